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
	changed := false
	for _, rel := range dirs {
		fi, ok, err := lowerDir(rel, lowers)
		if err != nil {
			return err
		}
		if !ok {
			continue
		}
		p := filepath.Join(upper, rel)
		st := fi.Sys().(*syscall.Stat_t)
		if err := os.Lchown(p, int(st.Uid), int(st.Gid)); err != nil {
			return err
		}
		if err := unix.Chmod(p, uint32(st.Mode)&0o7777); err != nil {
			return &os.PathError{Op: "chmod", Path: p, Err: err}
		}
		ts := []unix.Timespec{{Sec: st.Atim.Sec, Nsec: st.Atim.Nsec}, {Sec: st.Mtim.Sec, Nsec: st.Mtim.Nsec}}
		if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return &os.PathError{Op: "utimensat", Path: p, Err: err}
		}
		changed = true
	}
	if changed {
		return syncFS(upper)
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
