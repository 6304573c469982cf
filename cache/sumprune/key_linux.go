//go:build linux

package sumprune

import (
	"os"

	"golang.org/x/sys/unix"
)

// Stat returns the key of the file at path as source/localctx's walk reads
// it (fstatat without following a symlink).
func Stat(path string) (Key, error) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return Key{}, &os.PathError{Op: "lstat", Path: path, Err: err}
	}
	return Key{Size: st.Size, MtimeNs: st.Mtim.Nano(), CtimeNs: st.Ctim.Nano(), Ino: st.Ino}, nil
}
