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

func GetXattr(p, name string, buf *[]byte) (string, error) {
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
