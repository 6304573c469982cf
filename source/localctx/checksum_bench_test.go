package localctx

import (
	"os"
	"path/filepath"
	"runtime/debug"
	"testing"

	"github.com/builder-dev/builder/cache"
)

// BenchmarkChecksumContext checksums the directory $BUILDER_BENCH_CONTEXT
// (bench/checksum.sh makes one of 20,000 files, 300 MB): "cold" reads every
// file, "unchanged" reuses the digests remembered in a state dir's database.
func BenchmarkChecksumContext(b *testing.B) {
	dir := os.Getenv("BUILDER_BENCH_CONTEXT")
	if dir == "" {
		b.Skip("set BUILDER_BENCH_CONTEXT to a directory (bench/checksum.sh does)")
	}
	// As the builder command runs (cmd/builder sets it, unless GOGC is).
	if os.Getenv("GOGC") == "" {
		defer debug.SetGCPercent(debug.SetGCPercent(400))
	}
	b.Run("cold", func(b *testing.B) {
		tree, err := NewTree(dir, nil)
		if err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := tree.Checksum(".", nil); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("unchanged", func(b *testing.B) {
		db, err := cache.Open(filepath.Join(b.TempDir(), "meta.db"), nil)
		if err != nil {
			b.Fatal(err)
		}
		defer db.Close()
		tree, _ := NewTree(dir, nil)
		tree.Sums = db.FileSums()
		if _, err := tree.Checksum(".", nil); err != nil {
			b.Fatal(err)
		}
		for b.Loop() {
			if _, err := tree.Checksum(".", nil); err != nil {
				b.Fatal(err)
			}
		}
	})
}
