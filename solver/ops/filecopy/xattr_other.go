//go:build !linux

package filecopy

// AppendXattrs reads xattrs with Linux system calls (xattr_linux.go).
func AppendXattrs(b []byte, p string, reg bool) ([]byte, error) { return b, errUnsupported }
