//go:build linux && (amd64 || arm64)

package localctx

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// lstatAt is unix.Fstatat(dirfd, name, st, AT_SYMLINK_NOFOLLOW) without
// its copy of name per call (an allocation per file of a context's check):
// name goes NUL-terminated through scratch, which the caller reuses.
func lstatAt(dirfd int, name string, scratch *[]byte, st *unix.Stat_t) error {
	b := append(append((*scratch)[:0], name...), 0)
	*scratch = b
	_, _, e := unix.Syscall6(unix.SYS_NEWFSTATAT, uintptr(dirfd), uintptr(unsafe.Pointer(&b[0])),
		uintptr(unsafe.Pointer(st)), unix.AT_SYMLINK_NOFOLLOW, 0, 0)
	if e != 0 {
		return e
	}
	return nil
}
