//go:build !linux

package mountcache

import (
	"fmt"
	"hash"
	"os"
)

// statInto writes what fingerprint needs of the file abs, named name:
// without change times, only the modification time.
func statInto(h hash.Hash, abs, name string) error {
	fi, err := os.Lstat(abs)
	if err != nil {
		return err
	}
	fmt.Fprintf(h, "%q %o %d %d\n", name, fi.Mode(), fi.Size(), fi.ModTime().UnixNano())
	return nil
}
