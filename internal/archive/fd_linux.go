//go:build linux

package archive

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// MaxDepth bounds how deep in directories a walk through descriptors goes
// (WriteDiff, COPY): each level keeps one or two descriptors open, and a
// deeper tree would exhaust the whole process's. The path-based walks
// before them stopped near the same depth: a path of more levels exceeds
// PATH_MAX (4,096 bytes, two at least per level).
const MaxDepth = 2048

// ErrTooDeep is the error of a walk that went deeper than MaxDepth.
var ErrTooDeep = fmt.Errorf("directories nested more than %d deep", MaxDepth)

// FdReader reads a file descriptor the caller owns, without the set-up of
// an os.File (os.Open costs four fcntl calls and an epoll_ctl on a regular
// file, which adds up over thousands of small files).
type FdReader struct {
	FD   int
	Path string // for errors
}

func (r FdReader) Read(b []byte) (int, error) {
	for {
		n, err := unix.Read(r.FD, b)
		switch {
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return 0, &os.PathError{Op: "read", Path: r.Path, Err: err}
		case n == 0 && len(b) > 0:
			return 0, io.EOF
		}
		return n, nil
	}
}

// ReadlinkAt returns the target of the symlink name in the directory open
// at dirfd (path names it in errors).
func ReadlinkAt(dirfd int, name, path string) (string, error) {
	for size := 256; ; size *= 2 {
		b := make([]byte, size)
		n, err := unix.Readlinkat(dirfd, name, b)
		if err != nil {
			return "", &os.PathError{Op: "readlink", Path: path, Err: err}
		}
		if n < size {
			return string(b[:n]), nil
		}
	}
}

func readlinkAt(f *entryFile) (string, error) { return ReadlinkAt(f.dir, f.name, f.path) }

// OpenRegularAt opens name in the directory open at dirfd for reading, not
// following a symlink, and checks that it is still the regular file st
// (same inode): an entry replaced by a FIFO since it was stat'ed would
// block a plain open forever, so it is opened non-blocking (which changes
// nothing for a regular file) and refused. path names it in errors.
func OpenRegularAt(dirfd int, name, path string, st *unix.Stat_t) (int, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: path, Err: err}
	}
	var now unix.Stat_t
	if err := unix.Fstat(fd, &now); err != nil {
		unix.Close(fd)
		return -1, &os.PathError{Op: "fstat", Path: path, Err: err}
	}
	if now.Mode&unix.S_IFMT != unix.S_IFREG || now.Dev != st.Dev || now.Ino != st.Ino {
		unix.Close(fd)
		return -1, fmt.Errorf("%s changed while being read: it is no longer the regular file it was", path)
	}
	return fd, nil
}

// UnixMode converts a stat mode to an fs.FileMode (type, permission and
// special bits), as os.Lstat does.
func UnixMode(m uint32) fs.FileMode {
	mode := fs.FileMode(m & 0o777)
	switch m & unix.S_IFMT {
	case unix.S_IFDIR:
		mode |= fs.ModeDir
	case unix.S_IFLNK:
		mode |= fs.ModeSymlink
	case unix.S_IFIFO:
		mode |= fs.ModeNamedPipe
	case unix.S_IFSOCK:
		mode |= fs.ModeSocket
	case unix.S_IFCHR:
		mode |= fs.ModeDevice | fs.ModeCharDevice
	case unix.S_IFBLK:
		mode |= fs.ModeDevice
	}
	if m&unix.S_ISUID != 0 {
		mode |= fs.ModeSetuid
	}
	if m&unix.S_ISGID != 0 {
		mode |= fs.ModeSetgid
	}
	if m&unix.S_ISVTX != 0 {
		mode |= fs.ModeSticky
	}
	return mode
}
