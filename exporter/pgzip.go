package exporter

import (
	"io"
	"runtime"

	"github.com/builder-dev/builder/exporter/layergzip"
)

// parallelAbove is the tar size above which a layer is gzipped in parallel.
const parallelAbove = layergzip.ParallelAbove

func newAdaptiveGzip(w io.Writer, level, blocks int) (io.WriteCloser, error) {
	zw, err := layergzip.NewWriter(w, level, blocks)
	if err != nil {
		return nil, err // not a nil *Writer in an interface
	}
	return zw, nil
}

func parallelBlocks() int { return runtime.GOMAXPROCS(0) }
