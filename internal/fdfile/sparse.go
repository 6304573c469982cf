package fdfile

import (
	"bytes"
	"io"
	"sync"
)

// sparseBlock is the granularity of hole detection: a run of this many
// zero bytes at an aligned offset becomes a hole (filesystem blocks are
// 4 KiB or a divisor of it on every filesystem a layer lives on).
const sparseBlock = 4096

var zeroBlock [sparseBlock]byte

// WriteSparse copies r to f, which must be empty and positioned at 0,
// seeking over every aligned block of zeros instead of writing it, so
// that a sparse file (or a file of zeros) takes no disk space for its
// holes, whether the archive recorded them as holes (PAX or GNU sparse
// entries, which archive/tar expands to zeros) or as data. It returns the
// file's length and the bytes actually written. buf, when given, is the
// copy buffer; its length should be a multiple of 4 KiB.
func WriteSparse(f SparseFile, r io.Reader, buf []byte) (size, written int64, err error) {
	if len(buf) < sparseBlock {
		pb := copyBufs.Get().(*[]byte)
		defer copyBufs.Put(pb)
		buf = *pb
	}
	buf = buf[:len(buf)/sparseBlock*sparseBlock]
	hole := false // whether the file so far ends in a hole
	for {
		n, rerr := io.ReadFull(r, buf)
		if n > 0 {
			var w int64
			w, hole, err = writeChunk(f, buf[:n])
			written += w
			size += int64(n)
			if err != nil {
				return size, written, err
			}
		}
		if rerr == io.EOF || rerr == io.ErrUnexpectedEOF {
			break
		}
		if rerr != nil {
			return size, written, rerr
		}
	}
	if !hole {
		return size, written, nil
	}
	// A trailing hole was only seeked over: give the file its length.
	return size, written, f.Truncate(size)
}

// SparseFile is what WriteSparse writes: an *os.File, or a bare
// descriptor (fdfile.File).
type SparseFile interface {
	io.Writer
	io.Seeker
	Truncate(size int64) error
}

// copyBufs holds WriteSparse's buffers for callers that bring none.
var copyBufs = sync.Pool{New: func() any { b := make([]byte, 128<<10); return &b }}

// writeChunk writes the non-zero blocks of b at the current offset and
// seeks over the zero ones, and says whether b ended with zeros. b starts
// at a block-aligned file offset.
func writeChunk(f SparseFile, b []byte) (written int64, hole bool, err error) {
	for off := 0; off < len(b); {
		zero := isZero(b[off:min(off+sparseBlock, len(b))])
		run := min(off+sparseBlock, len(b))
		for run < len(b) && isZero(b[run:min(run+sparseBlock, len(b))]) == zero {
			run = min(run+sparseBlock, len(b))
		}
		if zero {
			if _, err := f.Seek(int64(run-off), io.SeekCurrent); err != nil {
				return written, true, err
			}
		} else {
			n, err := f.Write(b[off:run])
			written += int64(n)
			if err != nil {
				return written, false, err
			}
		}
		off, hole = run, zero
	}
	return written, hole, nil
}

func isZero(b []byte) bool { return bytes.Equal(b, zeroBlock[:len(b)]) }
