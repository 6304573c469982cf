package layergzip

import (
	"io"
	"testing"

	kgzip "github.com/klauspost/compress/gzip"
)

// TestNewWriterLevels refuses a level outside the gzip levels (it indexed
// the writer pools, and panicked at Close) and takes every one inside.
func TestNewWriterLevels(t *testing.T) {
	for _, level := range []int{kgzip.HuffmanOnly - 1, kgzip.BestCompression + 1, 22} {
		if _, err := NewWriter(io.Discard, level, 1); err == nil {
			t.Errorf("level %d accepted", level)
		}
	}
	for level := kgzip.HuffmanOnly; level <= kgzip.BestCompression; level++ {
		zw, err := NewWriter(io.Discard, level, 1)
		if err != nil {
			t.Fatalf("level %d: %v", level, err)
		}
		if _, err := zw.Write([]byte("data")); err != nil {
			t.Fatal(err)
		}
		if err := zw.Close(); err != nil {
			t.Fatalf("level %d: %v", level, err)
		}
	}
}
