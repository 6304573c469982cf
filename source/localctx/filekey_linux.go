//go:build linux

package localctx

import (
	"io/fs"
	"syscall"
)

func fileKey(fi fs.FileInfo) FileKey {
	k := FileKey{Size: fi.Size(), MtimeNs: fi.ModTime().UnixNano()}
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		k.CtimeNs = st.Ctim.Nano()
		k.Ino = st.Ino
	}
	return k
}
