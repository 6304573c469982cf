//go:build linux

package filecopy

import (
	"errors"
	"os"
	"slices"
	"strconv"
	"strings"

	"github.com/builder-dev/builder/internal/archive"
	"golang.org/x/sys/unix"
)

// xattr is an extended attribute a copy carries over.
type xattr struct{ name, value string }

// read returns the xattrs of the open file fd (p names it in errors; a
// regular file when reg, else a directory) that k keeps, sorted by name.
// A file without xattrs costs one system call.
func (k xattrKeep) read(fd int, p string, reg bool) ([]xattr, error) {
	if k == keepXattrsNone {
		return nil, nil
	}
	if n, err := unix.Flistxattr(fd, nil); err == nil && n == 0 {
		return nil, nil
	}
	var buf []byte
	names, err := archive.ListXattrsFd(fd, p, &buf)
	if err != nil {
		return nil, err
	}
	return k.pick(names, reg, func(name string) (string, error) { return archive.GetXattrFd(fd, p, name, &buf) })
}

// pick returns the xattrs of names that k keeps, with their values as get
// reads them, sorted by name; one removed since it was listed is left out.
func (k xattrKeep) pick(names []string, reg bool, get func(string) (string, error)) ([]xattr, error) {
	var xs []xattr
	for _, n := range names {
		if !k.keeps(n, reg) {
			continue
		}
		v, err := get(n)
		if errors.Is(err, unix.ENODATA) {
			continue
		}
		if err != nil {
			return nil, err
		}
		xs = append(xs, xattr{n, v})
	}
	slices.SortFunc(xs, func(a, b xattr) int { return strings.Compare(a.name, b.name) })
	return xs, nil
}

// setXattrs gives the open file fd (p names it in errors) the xattrs xs.
// It must come after the file's owner is set and its data written: either
// clears security.capability.
func setXattrs(fd int, p string, xs []xattr) error {
	for _, x := range xs {
		err := unix.Fsetxattr(fd, x.name, []byte(x.value), 0)
		if err == nil {
			continue
		}
		if x.name == capabilityXattr {
			return archive.CapabilityError(p, err)
		}
		return &os.PathError{Op: "fsetxattr " + x.name, Path: p, Err: err}
	}
	return nil
}

// copyDirXattrs gives the open directory to the xattrs of the open directory
// from that k keeps. A directory's xattrs are not cleared by its owner
// changing, so this may come before or after that.
func (k xattrKeep) copyDirXattrs(from, to dir) error {
	xs, err := k.read(from.fd, from.path, false)
	if err != nil {
		return err
	}
	return setXattrs(to.fd, to.path, xs)
}

// AppendXattrs appends to b, for a checksum, the xattrs of the file at p (a
// regular file when reg, else a directory; not followed if a symlink) that
// COPY from a stage or an image carries over: each as "/", its name, NUL,
// its value's length, NUL and its value, in name order. ("/" begins no
// relative path, so they cannot be taken for the next file.) A file
// without xattrs appends nothing, and costs one system call.
func AppendXattrs(b []byte, p string, reg bool) ([]byte, error) {
	if n, err := unix.Llistxattr(p, nil); err == nil && n == 0 {
		return b, nil
	}
	var buf []byte
	names, err := archive.ListXattrs(p, &buf)
	if err != nil {
		return b, err
	}
	xs, err := keepXattrsStage.pick(names, reg, func(name string) (string, error) { return archive.GetXattr(p, name, &buf) })
	if err != nil {
		return b, err
	}
	for _, x := range xs {
		b = append(b, '/')
		b = append(b, x.name...)
		b = append(b, 0)
		b = strconv.AppendInt(b, int64(len(x.value)), 10)
		b = append(b, 0)
		b = append(b, x.value...)
	}
	return b, nil
}
