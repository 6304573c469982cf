package gc

import (
	"path/filepath"
	"testing"

	"github.com/builder-dev/builder/cache"
)

// TestPruneDropsGoneTreeRecords: a prune removes the file tree records
// of build contexts that no longer exist and keeps the others.
func TestPruneDropsGoneTreeRecords(t *testing.T) {
	root := t.TempDir()
	c := openCollector(t, root)
	sums := c.DB.FileSums()
	id := func(dir string) []byte { return []byte(dir + "\x00.\x00" + "0123456789abcdef0123456789abcdef") }
	here, gone := id(root), id(filepath.Join(root, "checkout-gone"))
	for _, i := range [][]byte{here, gone} {
		sums.Store(nil, nil, nil, &cache.TreeSums{ID: i, Sums: [][32]byte{{1}}})
	}
	if _, err := c.Prune(t.Context(), PruneOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, ok := sums.LookupTree(here); !ok {
		t.Error("a prune removed the tree record of a context that exists")
	}
	if _, ok := sums.LookupTree(gone); ok {
		t.Error("a prune kept the tree record of a context that is gone")
	}
}
