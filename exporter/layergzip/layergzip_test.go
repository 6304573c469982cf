package layergzip

import (
	"errors"
	"io"
	"math/rand"
	"strings"
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

// failingWriter takes its first n bytes, and fails after.
type failingWriter struct{ n int }

func (w *failingWriter) Write(p []byte) (int, error) {
	if len(p) > w.n {
		w.n = 0
		return 0, errors.New("disk full")
	}
	w.n -= len(p)
	return len(p), nil
}

// TestCloseAgainAfterFailure fails the write of the held-back bytes at
// Close, after the first chunk of them: a second Close returns the error again,
// without writing or panicking on the chunks already given back.
func TestCloseAgainAfterFailure(t *testing.T) {
	zw, err := NewWriter(&failingWriter{n: 100 << 10}, kgzip.DefaultCompression, 1)
	if err != nil {
		t.Fatal(err)
	}
	// Incompressible, so that gzip writes while the chunks are replayed.
	data := make([]byte, 3*holdChunk+100)
	rand.New(rand.NewSource(1)).Read(data)
	if _, err := zw.Write(data); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		if err := zw.Close(); err == nil || !strings.Contains(err.Error(), "disk full") {
			t.Fatalf("Close %d: %v, want the write's error", i+1, err)
		}
	}
}
