//go:build linux

package archive

import (
	"bytes"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// ListXattrs returns the xattr names of p; buf is a reusable buffer.
func ListXattrs(p string, buf *[]byte) ([]string, error) {
	return xattrSource{path: p, fd: -1}.list(buf)
}

// GetXattr returns the value of p's xattr name (not following a symlink);
// buf is a reusable buffer.
func GetXattr(p, name string, buf *[]byte) (string, error) {
	return xattrSource{path: p, fd: -1}.get(name, buf)
}

// ListXattrsFd and GetXattrFd are ListXattrs and GetXattr of the open
// file fd (p names it in errors), for a caller whose thread may not see
// the file by its path.
func ListXattrsFd(fd int, p string, buf *[]byte) ([]string, error) {
	return xattrSource{path: p, fd: fd}.list(buf)
}

func GetXattrFd(fd int, p, name string, buf *[]byte) (string, error) {
	return xattrSource{path: p, fd: fd}.get(name, buf)
}

// CapabilityError is the error of setting the file capability
// (security.capability) of p. The kernel refuses with EINVAL a malformed
// value and, in a user namespace (rootless), a version 3 capability whose
// root user the namespace does not map.
func CapabilityError(p string, err error) error {
	const what = "setting the file capability (security.capability) of %s: %w"
	if errors.Is(err, unix.EINVAL) {
		return fmt.Errorf(what+": the value is malformed, or its root user (a version 3 capability's rootid) is not mapped in this rootless build's user namespace", p, err)
	}
	return fmt.Errorf(what, p, err)
}

// xattrSource reads the xattrs of a file through its descriptor when it
// is open (fd >= 0), else by its path, not following a symlink.
type xattrSource struct {
	path string
	fd   int
}

func xattrsOf(f *entryFile) xattrSource { return xattrSource{path: f.path, fd: f.fd} }

func (x xattrSource) llist(buf []byte) (int, error) {
	if x.fd >= 0 {
		return unix.Flistxattr(x.fd, buf)
	}
	return unix.Llistxattr(x.path, buf)
}

func (x xattrSource) lget(name string, buf []byte) (int, error) {
	if x.fd >= 0 {
		return unix.Fgetxattr(x.fd, name, buf)
	}
	return unix.Lgetxattr(x.path, name, buf)
}

func (x xattrSource) list(buf *[]byte) ([]string, error) {
	p := x.path
	growEmpty(buf)
	for {
		n, err := x.llist(*buf)
		if errors.Is(err, unix.ERANGE) {
			// Grown since we sized the buffer; ask again.
			sz, err := x.llist(nil)
			if err != nil {
				return nil, &os.PathError{Op: "llistxattr", Path: p, Err: err}
			}
			*buf = make([]byte, max(2*sz, len(*buf)))
			continue
		}
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		if err != nil {
			return nil, &os.PathError{Op: "llistxattr", Path: p, Err: err}
		}
		var names []string
		for _, b := range bytes.Split((*buf)[:n], []byte{0}) {
			if len(b) > 0 {
				names = append(names, string(b))
			}
		}
		return names, nil
	}
}

func (x xattrSource) get(name string, buf *[]byte) (string, error) {
	p := x.path
	growEmpty(buf)
	for {
		n, err := x.lget(name, *buf)
		if errors.Is(err, unix.ERANGE) {
			sz, err := x.lget(name, nil)
			if err != nil {
				return "", &os.PathError{Op: "lgetxattr " + name, Path: p, Err: err}
			}
			*buf = make([]byte, max(2*sz, len(*buf)))
			continue
		}
		if err != nil {
			return "", &os.PathError{Op: "lgetxattr " + name, Path: p, Err: err}
		}
		return string((*buf)[:n]), nil
	}
}

// growEmpty gives an empty buffer room: given none, the kernel returns the
// size a value needs instead of the value.
func growEmpty(buf *[]byte) {
	if len(*buf) == 0 {
		*buf = make([]byte, 4096)
	}
}
