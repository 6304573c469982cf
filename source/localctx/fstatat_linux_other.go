//go:build linux && !amd64 && !arm64

package localctx

import "golang.org/x/sys/unix"

// lstatAt is unix.Fstatat(dirfd, name, st, AT_SYMLINK_NOFOLLOW); amd64 and
// arm64 spare its copy of name (fstatat_linux_fast.go).
func lstatAt(dirfd int, name string, _ *[]byte, st *unix.Stat_t) error {
	return unix.Fstatat(dirfd, name, st, unix.AT_SYMLINK_NOFOLLOW)
}
