package server

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/builder-dev/builder/cache"
)

// The client's file digest cache remembers digests between builds and
// makes no lease file: no GC reads that database.
func TestClientSumsTakeNoLease(t *testing.T) {
	dir := t.TempDir()
	db := openSums(dir)
	if db == nil {
		t.Fatal("openSums gave no database for a writable directory")
	}
	key := cache.FileKey{Size: 3, MtimeNs: 1, CtimeNs: 2, Ino: 4}
	db.FileSums().Store([]string{"a"}, []cache.FileKey{key}, [][32]byte{{7}}, nil)
	if ents, err := os.ReadDir(filepath.Join(dir, "leases")); len(ents) != 0 || !os.IsNotExist(err) {
		t.Errorf("the client's sums database made leases: %v, %v", ents, err)
	}
	db.Close()
	db = openSums(dir)
	defer db.Close()
	sums, ok := db.FileSums().Lookup([][]byte{[]byte("a")}, []cache.FileKey{key})
	if !ok[0] || sums[0] != [32]byte{7} {
		t.Errorf("the digest stored in the last build is not found: %v %v", sums[0], ok[0])
	}
}
