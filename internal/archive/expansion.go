package archive

import (
	"fmt"

	"github.com/docker/go-units"
)

// Expansion bounds what an archive may expand to, against decompression
// and sparse-file bombs: a few KiB of gzip or zstd, or one sparse entry,
// can stand for terabytes.
type Expansion struct {
	// Compressed is the size of the archive as stored (the layer blob,
	// the ADD source file); zero for no bound.
	Compressed int64
	// What names the archive in the error ("layer sha256:…").
	What  string
	total int64
}

// Expansion limits: an archive may expand to MaxExpansionRatio times its
// compressed size, and to at least MinExpansionLimit whatever its size.
// gzip cannot exceed about 1032:1, so only crafted zstd streams and sparse
// entries reach the ratio.
const (
	MaxExpansionRatio = 1024
	MinExpansionLimit = 1 << 30
)

// Limit is the most the archive may expand to.
func (e *Expansion) Limit() int64 {
	if e.Compressed <= 0 {
		return -1
	}
	if e.Compressed > (1<<62)/MaxExpansionRatio {
		return 1 << 62
	}
	return max(MinExpansionLimit, MaxExpansionRatio*e.Compressed)
}

// Add accounts for a file of size bytes (its apparent size, holes
// included) before it is written, and fails once the archive's files add
// up to more than its Limit.
func (e *Expansion) Add(size int64) error {
	if e == nil {
		return nil
	}
	e.total += size
	if limit := e.Limit(); limit >= 0 && (size < 0 || e.total > limit) {
		return fmt.Errorf("%s: its files expand to more than %s, %d times its compressed size of %s; refusing what looks like a decompression or sparse-file bomb",
			e.What, units.BytesSize(float64(limit)), MaxExpansionRatio, units.BytesSize(float64(e.Compressed)))
	}
	return nil
}
