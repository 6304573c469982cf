//go:build linux

package filecopy

import (
	"os"

	"github.com/builder-dev/builder/internal/archive"
	"github.com/builder-dev/builder/source/localctx"
	"golang.org/x/sys/unix"
)

// checkStat checks an entry a copy from a Verify tree read (sub below the
// source being copied, st its stat, link a symlink's target) against what
// the source's checksum covered (localctx.Expect); x nil checks nothing.
func checkStat(x *localctx.Expect, sub string, st *unix.Stat_t, link string) error {
	if x == nil {
		return nil
	}
	key := localctx.FileKey{Size: st.Size, MtimeNs: st.Mtim.Nano(), CtimeNs: st.Ctim.Nano(), Ino: st.Ino}
	return x.Check(sub, archive.UnixMode(st.Mode), key, link)
}

// checkRead checks the regular file open as fd once read: a stat after the
// read also sees a write during it.
func checkRead(x *localctx.Expect, sub string, fd int, p string) error {
	if x == nil {
		return nil
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return &os.PathError{Op: "fstat", Path: p, Err: err}
	}
	return checkStat(x, sub, &st, "")
}

// checkPath checks the entry at the host path p (the source itself).
func checkPath(x *localctx.Expect, p string) error {
	if x == nil {
		return nil
	}
	var st unix.Stat_t
	if err := unix.Stat(p, &st); err != nil {
		return &os.PathError{Op: "stat", Path: p, Err: err}
	}
	return checkStat(x, "", &st, "")
}
