//go:build linux

package cache

import (
	"os"

	"golang.org/x/sys/unix"
)

// statKey is the key of the file at path as source/localctx's walk reads
// it (fstatat without following a symlink).
func statKey(path string) (FileKey, error) {
	var st unix.Stat_t
	if err := unix.Lstat(path, &st); err != nil {
		return FileKey{}, &os.PathError{Op: "lstat", Path: path, Err: err}
	}
	return FileKey{Size: st.Size, MtimeNs: st.Mtim.Nano(), CtimeNs: st.Ctim.Nano(), Ino: st.Ino}, nil
}
