package blobstream

import (
	"bytes"
	"io"
	"math/rand/v2"
	"runtime"
	"testing"

	kgzip "github.com/klauspost/compress/gzip"
)

// TestDecompressGzipBounded: inflating a 16 MiB layer allocates a bounded
// read-ahead (four 256 KiB blocks), not memory in proportion to the layer:
// a pull runs up to four layers at once, each through Decompress.
func TestDecompressGzipBounded(t *testing.T) {
	raw := make([]byte, 16<<20)
	r := rand.New(rand.NewPCG(1, 2))
	for i := 0; i < len(raw); i += 4096 {
		raw[i] = byte(r.Uint32()) // compressible, but not to nothing
	}
	var blob bytes.Buffer
	zw := kgzip.NewWriter(&blob)
	zw.Write(raw)
	zw.Close()

	var got bytes.Buffer
	got.Grow(len(raw))
	buf := make([]byte, 32<<10)
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	rc, err := Decompress(bytes.NewReader(blob.Bytes()), "gzip")
	if err != nil {
		t.Fatal(err)
	}
	n, err := io.CopyBuffer(struct{ io.Writer }{&got}, rc, buf)
	rc.Close()
	runtime.ReadMemStats(&after)
	if err != nil || n != int64(len(raw)) || !bytes.Equal(got.Bytes(), raw) {
		t.Fatalf("read %d of %d bytes, err %v, same bytes %v", n, len(raw), err, bytes.Equal(got.Bytes(), raw))
	}
	// 1 MiB of blocks, the inflater's state;
	// 1 MiB blocks (4 MiB) fail this.
	if alloc := after.TotalAlloc - before.TotalAlloc; alloc > 2<<20 {
		t.Errorf("inflating 16 MiB allocated %.1f MiB", float64(alloc)/(1<<20))
	}
}
