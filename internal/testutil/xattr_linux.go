package testutil

import (
	"bytes"
	"testing"

	"golang.org/x/sys/unix"
)

// Xattrs returns every extended attribute of p (not following a symlink)
// that this process may read, or fails the test.
func Xattrs(t testing.TB, p string) map[string]string {
	t.Helper()
	get := func(f func([]byte) (int, error)) []byte {
		n, err := f(nil)
		if err == nil && n > 0 {
			buf := make([]byte, n)
			if n, err = f(buf); err == nil {
				return buf[:n]
			}
		}
		if err != nil {
			t.Fatalf("reading the xattrs of %s: %v", p, err)
		}
		return nil
	}
	m := map[string]string{}
	for _, name := range bytes.Split(get(func(b []byte) (int, error) { return unix.Llistxattr(p, b) }), []byte{0}) {
		if len(name) > 0 {
			m[string(name)] = string(get(func(b []byte) (int, error) { return unix.Lgetxattr(p, string(name), b) }))
		}
	}
	return m
}
