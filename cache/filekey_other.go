//go:build !linux

package cache

import "os"

// statKey is the key of the file at path as source/localctx's walk reads
// it elsewhere than on Linux: size and mtime only.
func statKey(path string) (FileKey, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return FileKey{}, err
	}
	return FileKey{Size: fi.Size(), MtimeNs: fi.ModTime().UnixNano()}, nil
}
