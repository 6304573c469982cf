package exporter

import (
	"bytes"
	"errors"
	"io"
	"math/rand"
	"runtime"
	"testing"
	"time"

	"github.com/builder-dev/builder/cache/content"

	kgzip "github.com/klauspost/compress/gzip"
)

func mustGzip(tb testing.TB, w io.Writer, level, blocks int) io.WriteCloser {
	tb.Helper()
	zw, err := newAdaptiveGzip(w, level, blocks)
	if err != nil {
		tb.Fatal(err)
	}
	return zw
}

func adaptive(t *testing.T, data []byte, blocks int) []byte {
	t.Helper()
	var out bytes.Buffer
	zw := mustGzip(t, &out, kgzip.DefaultCompression, blocks)
	// Written in tar-sized pieces, as the differ does.
	for b := data; len(b) > 0; {
		n := min(len(b), 10240)
		if _, err := zw.Write(b[:n]); err != nil {
			t.Fatal(err)
		}
		b = b[n:]
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}

func gunzip(t *testing.T, blob []byte) []byte {
	t.Helper()
	zr, err := kgzip.NewReader(bytes.NewReader(blob))
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// TestAdaptiveGzipSmall: a layer up to parallelAbove gets exactly the
// single-stream gzip builder wrote before, so its digest does not change.
func TestAdaptiveGzipSmall(t *testing.T) {
	for _, size := range []int{0, 1, 100 << 10, parallelAbove} {
		data := mixedLayer(size)
		var want bytes.Buffer
		zw, _ := kgzip.NewWriterLevel(&want, kgzip.DefaultCompression)
		zw.Write(data)
		zw.Close()
		if got := adaptive(t, data, 4); !bytes.Equal(got, want.Bytes()) {
			t.Errorf("%d bytes: the blob differs from the single-stream gzip", size)
		}
	}
}

// TestAdaptiveGzipLarge: a larger layer is gzipped in parallel blocks into
// one valid gzip stream of the same bytes, and the blob does not depend
// on how many blocks ran at once (same tar, same blob, on any machine).
func TestAdaptiveGzipLarge(t *testing.T) {
	data := mixedLayer(parallelAbove + 5<<20 + 123)
	one := adaptive(t, data, 1)
	if got := gunzip(t, one); !bytes.Equal(got, data) {
		t.Fatalf("decompressed %d bytes, not the %d written", len(got), len(data))
	}
	if four := adaptive(t, data, 4); !bytes.Equal(one, four) {
		t.Error("the blob differs between 1 and 4 blocks at once")
	}
	var single bytes.Buffer
	zw, _ := kgzip.NewWriterLevel(&single, kgzip.DefaultCompression)
	zw.Write(data)
	zw.Close()
	t.Logf("%d bytes: parallel blob %d, single-stream %d", len(data), len(one), single.Len())
	if len(one) > single.Len()*105/100 {
		t.Errorf("the parallel blob is %d bytes, more than 5%% over the single stream's %d", len(one), single.Len())
	}
}

// TestAdaptiveGzipSameAsBefore: keeping the hold-back in pooled chunks and
// reusing the single-stream writers changed no blob: for sizes around the
// chunk size and the threshold, written in tar-sized and in odd pieces,
// the output is byte for byte that of the growing-buffer implementation
// with new writers. The sizes run one after another, so pooled writers
// and chunks are reused with the tables of other data in them.
func TestAdaptiveGzipSameAsBefore(t *testing.T) {
	sizes := []int{0, 1, 64<<10 - 1, 64 << 10, 64<<10 + 1, 2400 << 10,
		parallelAbove - 1, parallelAbove, parallelAbove + 1, 9 << 20}
	levels := []int{kgzip.DefaultCompression}
	if !testing.Short() {
		levels = append(levels, kgzip.BestSpeed, kgzip.BestCompression)
	}
	for _, level := range levels {
		for _, size := range sizes {
			if level != kgzip.DefaultCompression && size > parallelAbove+1 {
				continue // slow; the default level covers the parallel path
			}
			data := mixedLayer(size)
			for _, piece := range []int{10240, 777} {
				var want, got bytes.Buffer
				writeAll(t, &oldAdaptiveGzip{w: &want, level: level, blocks: 2}, data, piece)
				writeAll(t, mustGzip(t, &got, level, 2), data, piece)
				if !bytes.Equal(got.Bytes(), want.Bytes()) {
					t.Errorf("level %d, %d bytes in %d-byte writes: blob of %d bytes, was %d", level, size, piece, got.Len(), want.Len())
				}
			}
			// The same data again through reused writers and chunks.
			var first, again bytes.Buffer
			writeAll(t, mustGzip(t, &first, level, 2), data, 4096)
			writeAll(t, mustGzip(t, &again, level, 2), data, 4096)
			if !bytes.Equal(first.Bytes(), again.Bytes()) {
				t.Errorf("level %d, %d bytes: the blob differs the second time", level, size)
			}
		}
	}
}

func writeAll(t *testing.T, zw io.WriteCloser, data []byte, piece int) {
	t.Helper()
	for b := data; len(b) > 0; {
		n := min(len(b), piece)
		if _, err := zw.Write(b[:n]); err != nil {
			t.Fatal(err)
		}
		b = b[n:]
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
}

// TestWriteLayerFailedFillCloses fails the tar of a layer large enough to
// be gzipped in parallel, as a cancelled export does: pgzip's goroutines
// must end with it, not stay for the life of the process.
func TestWriteLayerFailedFillCloses(t *testing.T) {
	store, err := content.NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	e := &Exporter{Content: store}
	data := make([]byte, 2*parallelAbove)
	rand.New(rand.NewSource(1)).Read(data)
	before := runtime.NumGoroutine()
	for range 5 {
		_, _, _, _, err := e.writeLayer(t.Context(), e.newFlush(), Gzip, 0, func(w io.Writer) error {
			if _, err := w.Write(data); err != nil {
				return err
			}
			return errors.New("cancelled")
		}, nil)
		if err == nil {
			t.Fatal("writeLayer succeeded with a failed fill")
		}
	}
	deadline := time.Now().Add(5 * time.Second)
	for runtime.NumGoroutine() > before && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if n := runtime.NumGoroutine(); n > before {
		t.Fatalf("%d goroutines after 5 failed layers, %d before", n, before)
	}
}
