//go:build !linux

package localctx

import "io/fs"

// fileKey without ctime and inode: a remembered digest is trusted on size
// and mtime alone.
func fileKey(fi fs.FileInfo) FileKey {
	return FileKey{Size: fi.Size(), MtimeNs: fi.ModTime().UnixNano()}
}
