package blobstream

import (
	"io"
	"sync"
)

// PipeSize is how many bytes a Pipe holds between the download and the
// unpacker: io.Pipe hands each write over only when the reader takes it,
// so a download stalled on its own write to the content store (the
// kernel throttling dirty pages while the extractor writes the layer)
// starved the inflater, and a busy inflater held up the download.
// 1 MiB is ~10 ms of inflating; a pull runs up to four layers at once.
const PipeSize = 1 << 20

// CopyBuffer is the size of the buffer a download copies through
// (io.Copy's 32 KiB made one content-store write and one pipe hand-over
// per 32 KiB of a 500 MB layer).
const CopyBuffer = 256 << 10

var copyBufs = sync.Pool{New: func() any { b := make([]byte, CopyBuffer); return &b }}

// Copy copies src to dst through a pooled buffer of CopyBuffer bytes.
func Copy(dst io.Writer, src io.Reader) (int64, error) {
	pb := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(pb)
	return io.CopyBuffer(dst, src, *pb)
}

// pipe is a pipe holding up to len(ring) bytes: Write blocks only while it
// is full, Read only while it is empty.
type pipe struct {
	mu   sync.Mutex
	cond *sync.Cond
	ring []byte
	head int // index of the first unread byte
	n    int // unread bytes
	// werr ends the reader's stream once the unread bytes are read (nil:
	// io.EOF); rerr fails the writer's next Write.
	werr, rerr       error
	wclosed, rclosed bool
}

// PipeReader is the reading end of a Pipe.
type PipeReader struct{ p *pipe }

// PipeWriter is the writing end of a Pipe.
type PipeWriter struct{ p *pipe }

// Pipe returns a pipe holding up to size bytes written and not yet read;
// its ends behave as io.Pipe's, except that the reader gets what was
// written before the writer closed, then the writer's error.
func Pipe(size int) (*PipeReader, *PipeWriter) {
	p := &pipe{ring: make([]byte, size)}
	p.cond = sync.NewCond(&p.mu)
	return &PipeReader{p}, &PipeWriter{p}
}

func (w *PipeWriter) Write(b []byte) (int, error) {
	p := w.p
	p.mu.Lock()
	defer p.mu.Unlock()
	written := 0
	for len(b) > 0 {
		for p.n == len(p.ring) && !p.rclosed && !p.wclosed {
			p.cond.Wait()
		}
		if p.rclosed {
			return written, p.rerr
		}
		if p.wclosed {
			return written, io.ErrClosedPipe
		}
		tail := (p.head + p.n) % len(p.ring)
		free := min(len(p.ring)-p.n, len(p.ring)-tail) // up to the end of the ring
		c := copy(p.ring[tail:tail+free], b)
		p.n += c
		written += c
		b = b[c:]
		p.cond.Broadcast()
	}
	return written, nil
}

// CloseWithError closes the writing end: the reader gets the unread bytes,
// then err (io.EOF when nil).
func (w *PipeWriter) CloseWithError(err error) error {
	p := w.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.wclosed {
		p.wclosed, p.werr = true, err
	}
	p.cond.Broadcast()
	return nil
}

// Close is CloseWithError(nil).
func (w *PipeWriter) Close() error { return w.CloseWithError(nil) }

func (r *PipeReader) Read(b []byte) (int, error) {
	p := r.p
	p.mu.Lock()
	defer p.mu.Unlock()
	for p.n == 0 && !p.wclosed && !p.rclosed {
		p.cond.Wait()
	}
	if p.rclosed {
		return 0, io.ErrClosedPipe
	}
	if p.n == 0 {
		if p.werr != nil {
			return 0, p.werr
		}
		return 0, io.EOF
	}
	c := copy(b, p.ring[p.head:min(p.head+p.n, len(p.ring))])
	p.head = (p.head + c) % len(p.ring)
	p.n -= c
	p.cond.Broadcast()
	return c, nil
}

// CloseWithError closes the reading end: the writer's next Write fails
// with err (io.ErrClosedPipe when nil), and what was unread is dropped.
func (r *PipeReader) CloseWithError(err error) error {
	p := r.p
	p.mu.Lock()
	defer p.mu.Unlock()
	if err == nil {
		err = io.ErrClosedPipe
	}
	if !p.rclosed {
		p.rclosed, p.rerr = true, err
		p.n = 0
	}
	p.cond.Broadcast()
	return nil
}

// Close is CloseWithError(nil).
func (r *PipeReader) Close() error { return r.CloseWithError(nil) }
