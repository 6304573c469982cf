package exporter

import (
	"io"
	"runtime"

	"github.com/builder-dev/builder/exporter/layergzip"
)

// parallelAbove is the tar size above which a layer is gzipped in parallel.
const parallelAbove = layergzip.ParallelAbove

func newAdaptiveGzip(w io.Writer, level, blocks int) io.WriteCloser {
	return layergzip.NewWriter(w, level, blocks)
}

func parallelBlocks() int { return runtime.GOMAXPROCS(0) }
