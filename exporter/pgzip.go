package exporter

import (
	"bytes"
	"io"
	"runtime"

	kgzip "github.com/klauspost/compress/gzip"
	"github.com/klauspost/pgzip"
)

// A layer tar larger than parallelAbove is gzipped on every core
// (klauspost/pgzip, in blocks of parallelBlock, each primed with the end
// of the one before): a 150 MB COPY or a 1 GiB RUN layer was compressed on
// one core while the other idled. Smaller layers keep the single-stream
// gzip builder always wrote, and so their digests. The parallel blob
// depends only on the tar (the block size is fixed; how many blocks run at
// once is not in the output), so the same tar still makes the same blob.
const (
	parallelAbove = 4 << 20
	parallelBlock = 1 << 20
)

// adaptiveGzip holds back the first parallelAbove bytes of the tar to
// decide between the two gzips: Close before that writes one gzip stream
// of them, more switches to pgzip.
type adaptiveGzip struct {
	w      io.Writer
	level  int
	blocks int
	buf    bytes.Buffer // doubles as it grows: append grew large slices by 1.25x, copying a 2 MB layer ~40 times
	zw     io.WriteCloser
}

// newAdaptiveGzip compresses to w at level (a gzip level, not 0); blocks
// is how many blocks pgzip compresses at once.
func newAdaptiveGzip(w io.Writer, level, blocks int) *adaptiveGzip {
	return &adaptiveGzip{w: w, level: level, blocks: max(blocks, 1)}
}

func parallelBlocks() int { return runtime.GOMAXPROCS(0) }

func (a *adaptiveGzip) Write(p []byte) (int, error) {
	if a.zw == nil {
		if a.buf.Len()+len(p) <= parallelAbove {
			return a.buf.Write(p)
		}
		pw, err := pgzip.NewWriterLevel(a.w, a.level)
		if err != nil {
			return 0, err
		}
		if err := pw.SetConcurrency(parallelBlock, a.blocks); err != nil {
			return 0, err
		}
		a.zw = pw
		if _, err := pw.Write(a.buf.Bytes()); err != nil {
			return 0, err
		}
		a.buf = bytes.Buffer{}
	}
	return a.zw.Write(p)
}

func (a *adaptiveGzip) Close() error {
	if a.zw != nil {
		return a.zw.Close()
	}
	zw, err := kgzip.NewWriterLevel(a.w, a.level)
	if err != nil {
		return err
	}
	if _, err := zw.Write(a.buf.Bytes()); err != nil {
		return err
	}
	a.buf = bytes.Buffer{}
	return zw.Close()
}
