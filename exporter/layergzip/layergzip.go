// Package layergzip gzips layer tars for the exporter: one stream for a
// small layer, parallel blocks for a large one, the same blob for the same
// tar either way.
package layergzip

import (
	"fmt"
	"io"
	"sync"

	kgzip "github.com/klauspost/compress/gzip"
	"github.com/klauspost/pgzip"
)

// A layer tar larger than ParallelAbove is gzipped on every core
// (klauspost/pgzip, in blocks of ParallelBlock, each primed with the end
// of the one before): a 150 MB COPY or a 1 GiB RUN layer was compressed on
// one core while the other idled. Smaller layers keep the single-stream
// gzip builder always wrote, and so their digests. The parallel blob
// depends only on the tar (the block size is fixed; how many blocks run at
// once is not in the output), so the same tar still makes the same blob.
// The held-back bytes are kept in pooled chunks of holdChunk, and the
// single-stream writers pooled by level (less HuffmanOnly): a growing buffer
// copied itself, and it and a new writer cleared fresh memory, for every
// layer (a third of builder's CPU in a build of small layers). A Reset
// writer writes the same bytes as a new one.
const (
	ParallelAbove = 4 << 20
	ParallelBlock = 1 << 20
	holdChunk     = 64 << 10
)

var (
	holdChunks  = sync.Pool{New: func() any { return new([holdChunk]byte) }}
	singleGzips [kgzip.BestCompression - kgzip.HuffmanOnly + 1]sync.Pool
)

// Writer holds back the first ParallelAbove bytes of the tar to decide
// between the two gzips: Close before that writes one gzip stream of them,
// more switches to pgzip.
type Writer struct {
	w      io.Writer
	level  int
	blocks int
	held   []*[holdChunk]byte // all full but the last
	n      int                // bytes held
	zw     io.WriteCloser
	// err is the error of a Close that failed, for a second one.
	err error
}

// NewWriter compresses to w at level (a gzip level, HuffmanOnly to
// BestCompression); blocks is how many blocks pgzip compresses at once.
// Close flushes it and leaves w open.
func NewWriter(w io.Writer, level, blocks int) (*Writer, error) {
	if level < kgzip.HuffmanOnly || level > kgzip.BestCompression {
		return nil, fmt.Errorf("gzip level %d: levels are %d to %d", level, kgzip.HuffmanOnly, kgzip.BestCompression)
	}
	return &Writer{w: w, level: level, blocks: max(blocks, 1)}, nil
}

func (a *Writer) Write(p []byte) (int, error) {
	if a.zw != nil {
		return a.zw.Write(p)
	}
	if a.n+len(p) > ParallelAbove {
		pw, err := pgzip.NewWriterLevel(a.w, a.level)
		if err != nil {
			return 0, err
		}
		if err := pw.SetConcurrency(ParallelBlock, a.blocks); err != nil {
			return 0, err
		}
		a.zw = pw
		if err := a.replay(pw); err != nil {
			return 0, err
		}
		return pw.Write(p)
	}
	for b := p; len(b) > 0; {
		off := a.n % holdChunk
		if off == 0 {
			a.held = append(a.held, holdChunks.Get().(*[holdChunk]byte))
		}
		n := copy(a.held[len(a.held)-1][off:], b)
		a.n += n
		b = b[n:]
	}
	return len(p), nil
}

// replay writes the held bytes to zw, which copies them, and pools their
// chunks again.
func (a *Writer) replay(zw io.Writer) error {
	held, n := a.held, a.n
	// Cleared and pooled even when a write fails, so that nothing is left
	// to replay (or a nil chunk to write) at a second Close.
	a.held, a.n = nil, 0
	var err error
	for i, c := range held {
		if err == nil {
			_, err = zw.Write(c[:min(holdChunk, n-i*holdChunk)])
		}
		holdChunks.Put(c)
	}
	return err
}

func (a *Writer) Close() error {
	if a.zw != nil {
		return a.zw.Close()
	}
	if a.err != nil {
		return a.err
	}
	pool := &singleGzips[a.level-kgzip.HuffmanOnly]
	zw, _ := pool.Get().(*kgzip.Writer)
	if zw == nil {
		var err error
		if zw, err = kgzip.NewWriterLevel(a.w, a.level); err != nil {
			return err
		}
	}
	zw.Reset(a.w)
	if err := a.replay(zw); err != nil {
		a.err = err
		return err
	}
	if err := zw.Close(); err != nil {
		a.err = err
		return err
	}
	zw.Reset(io.Discard) // not to keep a.w
	pool.Put(zw)
	return nil
}
