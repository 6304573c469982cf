//go:build linux

package archive

import (
	"bytes"
	"errors"
	"os"

	"golang.org/x/sys/unix"
)

// ListXattrs returns the xattr names of p; buf is a reusable buffer.
func ListXattrs(p string, buf *[]byte) ([]string, error) {
	growEmpty(buf)
	for {
		n, err := unix.Llistxattr(p, *buf)
		if errors.Is(err, unix.ERANGE) {
			// Grown since we sized the buffer; ask again.
			sz, err := unix.Llistxattr(p, nil)
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

// GetXattr returns the value of p's xattr name (not following a symlink);
// buf is a reusable buffer.
func GetXattr(p, name string, buf *[]byte) (string, error) {
	growEmpty(buf)
	for {
		n, err := unix.Lgetxattr(p, name, *buf)
		if errors.Is(err, unix.ERANGE) {
			sz, err := unix.Lgetxattr(p, name, nil)
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
