//go:build !linux

package sumprune

import "os"

// Stat returns the key of the file at path as source/localctx's walk reads
// it elsewhere than on Linux: size and mtime only.
func Stat(path string) (Key, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return Key{}, err
	}
	return Key{Size: fi.Size(), MtimeNs: fi.ModTime().UnixNano()}, nil
}
