package blobstream

import (
	"io"
	"sync"
)

// CopyBuffer is the size of the buffer a download copies through: with
// io.Copy's 32 KiB, a 500 MB layer took 17,000 socket reads, as many
// content-store writes and pipe hand-overs to the unpacker (each a
// goroutine wake-up); the unpacker reads as much at once.
const CopyBuffer = 256 << 10

var copyBufs = sync.Pool{New: func() any { b := make([]byte, CopyBuffer); return &b }}

// Copy copies src to dst through a pooled buffer of CopyBuffer bytes.
func Copy(dst io.Writer, src io.Reader) (int64, error) {
	pb := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(pb)
	return io.CopyBuffer(dst, src, *pb)
}
