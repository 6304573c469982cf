package localctx

import (
	"fmt"
	"testing"
)

// TestChecksumUnchangedAllocs: checking an unchanged context allocates
// about once per file (the stat's path argument), not a string per name
// and slices grown entry by entry: a 20,000-file context's no-op rebuild
// spent a tenth of its time allocating and copying.
func TestChecksumUnchangedAllocs(t *testing.T) {
	files := map[string]string{}
	const n = 400
	for i := range n {
		files[fmt.Sprintf("d%d/file-with-a-longer-name-%03d", i%4, i)] = "x"
	}
	dir := makeTree(t, files)
	settle()
	tree, _ := NewTree(dir, nil)
	tree.Sums = newMemSums()
	first, err := tree.Checksum(".", nil)
	if err != nil {
		t.Fatal(err)
	}
	var again string
	allocs := testing.AllocsPerRun(5, func() { again, _ = tree.Checksum(".", nil) })
	if again != first {
		t.Fatalf("checksum of an unchanged tree changed")
	}
	if per := allocs / n; per > 1.3 {
		t.Errorf("checksum of an unchanged tree of %d files: %.0f allocations, %.2f per file; want at most 1.3", n, allocs, per)
	}
}
