package mountcache

import (
	"fmt"
	"hash"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// statInto writes what fingerprint needs of the file abs, named name.
func statInto(h hash.Hash, abs, name string) error {
	var st unix.Stat_t
	if err := unix.Lstat(abs, &st); err != nil {
		return &os.PathError{Op: "lstat", Path: abs, Err: err}
	}
	fmt.Fprintf(h, "%q %o %d %d %d %d %d.%d %d.%d\n", filepath.ToSlash(name), st.Mode, st.Uid, st.Gid, st.Size, st.Ino,
		st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec)
	return nil
}
