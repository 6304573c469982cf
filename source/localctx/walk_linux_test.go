package localctx

import (
	"fmt"
	"runtime"
	"testing"
)

// TestChecksumUnchangedAllocs: checking an unchanged context allocates
// nothing per file (on amd64 and arm64 not even the stat's path argument:
// lstatAt), not a string per name and slices grown entry by entry: a
// 20,000-file context's no-op rebuild spent a tenth of its time
// allocating and copying. Counted as
// the difference between two trees, so that the walk's fixed cost (a
// buffer per worker, one per CPU) does not count.
func TestChecksumUnchangedAllocs(t *testing.T) {
	allocs := func(n int) float64 {
		files := map[string]string{}
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
		a := testing.AllocsPerRun(5, func() { again, _ = tree.Checksum(".", nil) })
		if again != first {
			t.Fatalf("checksum of an unchanged tree changed")
		}
		return a
	}
	small, large := allocs(200), allocs(600)
	want := 1.3 // the stat's copy of the name
	if runtime.GOARCH == "amd64" || runtime.GOARCH == "arm64" {
		want = 0.1
	}
	if per := (large - small) / 400; per > want {
		t.Errorf("checksum of an unchanged tree: %.0f allocations for 200 files, %.0f for 600: %.2f per file; want at most %.1f", small, large, per, want)
	}
}
