package exporter

import (
	"bytes"
	"io"

	"github.com/builder-dev/builder/exporter/layergzip"
	kgzip "github.com/klauspost/compress/gzip"
	"github.com/klauspost/pgzip"
)

// oldAdaptiveGzip is adaptiveGzip as it was before the hold-back was kept
// in pooled chunks (one growing bytes.Buffer): the tests check the blobs
// stay byte-identical, and the benchmarks compare the two.
type oldAdaptiveGzip struct {
	w      io.Writer
	level  int
	blocks int
	buf    bytes.Buffer
	zw     io.WriteCloser
}

func (a *oldAdaptiveGzip) Write(p []byte) (int, error) {
	if a.zw == nil {
		if a.buf.Len()+len(p) <= parallelAbove {
			return a.buf.Write(p)
		}
		pw, err := pgzip.NewWriterLevel(a.w, a.level)
		if err != nil {
			return 0, err
		}
		if err := pw.SetConcurrency(layergzip.ParallelBlock, a.blocks); err != nil {
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

func (a *oldAdaptiveGzip) Close() error {
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
