//go:build linux

// Package fdfile makes files through bare descriptors, for code that
// makes thousands of them (a layer's unpacking): File writes without the
// set-up of an os.File (os.OpenFile costs four fcntl calls and an
// epoll_ctl on a regular file), and Dir and Umask tell which owner and
// mode the kernel gives a new file, so that a chown or chmod can be left
// out when it would change nothing. WriteSparse copies into a new file,
// leaving holes where a block is all zeros.
package fdfile

import (
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

// File is a file descriptor the caller owns and closes; Path names it in
// errors.
type File struct {
	FD   int
	Path string
}

// Write writes all of b (a regular file takes a short write only when
// full, and then the next write says why).
func (f File) Write(b []byte) (int, error) {
	done := 0
	for done < len(b) {
		n, err := unix.Write(f.FD, b[done:])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return done, &os.PathError{Op: "write", Path: f.Path, Err: err}
		}
		done += n
	}
	return done, nil
}

func (f File) Seek(offset int64, whence int) (int64, error) {
	off, err := unix.Seek(f.FD, offset, whence)
	if err != nil {
		return off, &os.PathError{Op: "seek", Path: f.Path, Err: err}
	}
	return off, nil
}

func (f File) Truncate(size int64) error {
	if err := unix.Ftruncate(f.FD, size); err != nil {
		return &os.PathError{Op: "truncate", Path: f.Path, Err: err}
	}
	return nil
}

// Umask is the process's umask, read from /proc/self/status (umask(2)
// would change it for every thread meanwhile); -1 when unknown.
var Umask = sync.OnceValue(func() int {
	b, err := os.ReadFile("/proc/self/status")
	if err != nil {
		return -1
	}
	_, rest, ok := strings.Cut(string(b), "\nUmask:")
	v, _, _ := strings.Cut(rest, "\n")
	m, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32)
	if !ok || err != nil {
		return -1
	}
	return int(m)
})

// Dir is a directory open at FD, and what the kernel gives what is made
// in it.
type Dir struct {
	FD int
	// GID is its group. A new entry gets it when the directory is setgid
	// or the file system mounted grpid, else the maker's: both are the
	// maker's when GID is.
	GID int
	// DefaultACL: it has a default ACL, which replaces the umask for what
	// is made in it (an error other than "none" counts as one).
	DefaultACL bool
}

// OpenDir opens the directory name in the directory open at dirfd
// (unix.AT_FDCWD: name is a path), not following a symlink. It is opened
// O_PATH, which needs search permission only, as the paths it replaces
// did (a 0311 destination works without root): FD serves the *at calls
// (an entry's name non-empty), not fchown, fchmod or reads of the
// directory itself.
func OpenDir(dirfd int, name string) (Dir, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return Dir{FD: -1}, &os.PathError{Op: "open", Path: name, Err: err}
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return Dir{FD: -1}, &os.PathError{Op: "fstat", Path: name, Err: err}
	}
	// fgetxattr refuses an O_PATH descriptor; its /proc link reads the
	// same inode (without /proc, the error counts as an ACL: a chmod
	// more, never one less).
	_, err = unix.Getxattr("/proc/self/fd/"+strconv.Itoa(fd), "system.posix_acl_default", nil)
	return Dir{FD: fd, GID: int(st.Gid), DefaultACL: !errors.Is(err, unix.ENODATA) && !errors.Is(err, unix.ENOTSUP)}, nil
}

// DirsBeneath returns, sorted, those of rels (relative paths) that name a
// directory under root reached without following a symlink in any
// component.
func DirsBeneath(root string, rels []string) ([]string, error) {
	if len(rels) == 0 {
		return nil, nil
	}
	rootFD, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: root, Err: err}
	}
	defer unix.Close(rootFD)
	var dirs []string
	for _, rel := range rels {
		fd, err := unix.Openat2(rootFD, rel, &unix.OpenHow{
			Flags:   unix.O_PATH | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
		})
		switch {
		case err == nil:
			unix.Close(fd)
			dirs = append(dirs, rel)
		case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENOTDIR), errors.Is(err, unix.ELOOP), errors.Is(err, unix.EXDEV):
			// Gone, not a directory, or reached through a symlink.
		default:
			return nil, &os.PathError{Op: "open beneath " + root, Path: rel, Err: err}
		}
	}
	slices.Sort(dirs)
	return dirs, nil
}
