//go:build linux

package snapshot

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// InheritDirs gives each directory dirs names (relative paths in the
// layer directory upper, made by Apply for entries whose parents the tar
// did not list: ApplyResult.ImplicitDirs) the mode, owner and times of the
// same directory in the layers below, lowers, top-most first. Applied on
// top of those layers in order, as containerd does, such an entry would
// have found the directory there and left it alone; applied into its own
// directory, the layer would otherwise hide, say, a 1777 /tmp behind a
// 0755 one. A directory that no lower layer has keeps 0755.
func InheritDirs(upper string, dirs, lowers []string) error {
	if len(dirs) == 0 {
		return nil
	}
	root, err := unix.Open(upper, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: upper, Err: err}
	}
	defer unix.Close(root)
	changed := false
	for _, rel := range dirs {
		fi, ok, err := lowerDir(rel, lowers)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		if err := setDirFrom(root, upper, rel, fi.Sys().(*syscall.Stat_t)); err != nil {
			return err
		}
		changed = true
	}
	if changed {
		return syncFS(upper)
	}
	return nil
}

// setDirFrom gives the directory rel in the layer directory open at root
// st's owner, mode and times, through a descriptor opened inside it
// without following any symlink: the layer's own entries may have put a
// symlink where rel's parent was (a/bin implied, then "a -> /usr"), and a
// path would lead the chmod to the host's /usr/bin.
func setDirFrom(root int, upper, rel string, st *syscall.Stat_t) error {
	p := filepath.Join(upper, rel)
	fd, err := unix.Openat2(root, rel, &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	})
	if err != nil {
		return &os.PathError{Op: "open in layer", Path: p, Err: err}
	}
	defer unix.Close(fd)
	if err := unix.Fchown(fd, int(st.Uid), int(st.Gid)); err != nil {
		return &os.PathError{Op: "fchown", Path: p, Err: err}
	}
	if err := unix.Fchmod(fd, uint32(st.Mode)&0o7777); err != nil {
		return &os.PathError{Op: "fchmod", Path: p, Err: err}
	}
	// futimens: utimensat with a NULL path sets the descriptor's times
	// (x/sys passes "" rather than NULL).
	ts := [2]unix.Timespec{{Sec: st.Atim.Sec, Nsec: st.Atim.Nsec}, {Sec: st.Mtim.Sec, Nsec: st.Mtim.Nsec}}
	if _, _, e := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0); e != 0 {
		return &os.PathError{Op: "futimens", Path: p, Err: e}
	}
	return nil
}

// lowerDir finds rel in the top-most lower layer that has it, as overlay
// would: without following symlinks, and stopping at anything that hides
// what is below (a whiteout, a file or symlink in its way).
func lowerDir(rel string, lowers []string) (fs.FileInfo, bool, error) {
	parts := strings.Split(rel, "/")
	for _, lower := range lowers {
		p := lower
		for i, part := range parts {
			p = filepath.Join(p, part)
			fi, err := os.Lstat(p)
			if errors.Is(err, fs.ErrNotExist) {
				break // not in this layer: look below
			}
			if err != nil {
				return nil, false, fmt.Errorf("looking for %s in lower layers: %w", rel, err)
			}
			if !fi.IsDir() {
				// A whiteout, file or symlink hides the layers below.
				return nil, false, nil
			}
			if i == len(parts)-1 {
				return fi, true, nil
			}
		}
	}
	return nil, false, nil
}
