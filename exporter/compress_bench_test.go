package exporter

import (
	"bytes"
	"compress/gzip"
	"fmt"
	"io"
	"math/rand"
	"syscall"
	"testing"
)

// mixedLayer is layer-like data: source text, binary-looking random bytes
// and zero runs, in 64 KiB files' worth of each.
func mixedLayer(size int) []byte {
	r := rand.New(rand.NewSource(1))
	var b bytes.Buffer
	words := []string{"func", "return", "package", "import", "if err != nil {", "}", "\n", "\t", "for i := range", "string", "int64", "// comment about things"}
	for b.Len() < size {
		switch r.Intn(3) {
		case 0:
			for n := 0; n < 64<<10; {
				w := words[r.Intn(len(words))]
				b.WriteString(w + " ")
				n += len(w) + 1
			}
		case 1:
			chunk := make([]byte, 64<<10)
			r.Read(chunk)
			b.Write(chunk)
		case 2:
			b.Write(make([]byte, 64<<10))
		}
	}
	return b.Bytes()[:size]
}

// BenchmarkCompress compares Go's compress/gzip with the compressors the
// exporter uses, at their default levels, on 64 MiB of mixed layer data
// (`go test -run '^$' -bench BenchmarkCompress ./exporter`; MB/s scale to
// a 1 GiB layer linearly).
func BenchmarkCompress(b *testing.B) {
	data := mixedLayer(64 << 20)
	cases := []struct {
		name string
		w    func(io.Writer) (io.WriteCloser, error)
	}{
		{"stdlib-gzip", func(w io.Writer) (io.WriteCloser, error) { return gzip.NewWriterLevel(w, gzip.DefaultCompression) }},
		{"gzip", func(w io.Writer) (io.WriteCloser, error) { return compressor(w, "gzip", gzip.DefaultCompression) }},
		{"gzip-one-core", func(w io.Writer) (io.WriteCloser, error) {
			return newAdaptiveGzip(w, gzip.DefaultCompression, 1)
		}},
		{"zstd", func(w io.Writer) (io.WriteCloser, error) { return compressor(w, "zstd", 0) }},
	}
	for _, c := range cases {
		b.Run(c.name, func(b *testing.B) {
			b.SetBytes(int64(len(data)))
			var out int
			for b.Loop() {
				var cw countWriter
				w, err := c.w(&cw)
				if err != nil {
					b.Fatal(err)
				}
				w.Write(data)
				w.Close()
				out = cw.n
			}
			b.ReportMetric(float64(out)/float64(len(data)), "ratio")
		})
	}
}

// processCPU is the CPU time the process used so far (user and system, GC
// included): under load, wall time per op says little about the cost.
func processCPU(b *testing.B) int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return ru.Utime.Nano() + ru.Stime.Nano()
}

type countWriter struct{ n int }

func (c *countWriter) Write(p []byte) (int, error) { c.n += len(p); return len(p), nil }

// BenchmarkAdaptiveGzip compares the hold-back in pooled chunks with the
// growing buffer it replaced, on layers below, at and above parallelAbove
// written in 32 KiB pieces (`go test -run '^$' -bench AdaptiveGzip
// -benchmem -count 6 ./exporter`, then benchstat; cpu-ns/op is the
// process's CPU time, GC and pgzip's goroutines included).
func BenchmarkAdaptiveGzip(b *testing.B) {
	for _, size := range []int{64 << 10, 2400 << 10, parallelAbove, 20 << 20} {
		data := mixedLayer(size)
		for _, impl := range []string{"old", "new"} {
			b.Run(fmt.Sprintf("size=%d/impl=%s", size, impl), func(b *testing.B) {
				b.SetBytes(int64(size))
				b.ReportAllocs()
				cpu := processCPU(b)
				for b.Loop() {
					var zw io.WriteCloser = mustGzip(b, io.Discard, gzip.DefaultCompression, parallelBlocks())
					if impl == "old" {
						zw = &oldAdaptiveGzip{w: io.Discard, level: gzip.DefaultCompression, blocks: parallelBlocks()}
					}
					for p := data; len(p) > 0; p = p[min(len(p), 32<<10):] {
						zw.Write(p[:min(len(p), 32<<10)])
					}
					zw.Close()
				}
				b.ReportMetric(float64(processCPU(b)-cpu)/float64(b.N), "cpu-ns/op")
			})
		}
	}
}
