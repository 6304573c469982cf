// Package blobstream passes a blob's bytes to a reader as they are
// downloaded (see Stream), and turns a layer blob into its tar stream
// (Decompress).
package blobstream

import (
	"errors"
	"io"
)

// ErrRestarted ends a stream whose download started again from its first
// byte (a registry that ignored a range, or a corrupted body): what the
// reader got so far is void.
var ErrRestarted = errors.New("the download started again")

// Stream passes a blob's bytes to a reader (the unpacker) as they are
// downloaded, through a pipe, so that a layer is unpacked while it
// downloads rather than after. The download stays the authority: the
// pipe's end of file comes only once the blob is committed, digest
// checked, to the content store; a reader that gives up (closing its end)
// does not stop the download, and a download that restarts breaks the
// stream, so the reader falls back to the stored blob.
type Stream struct {
	pw *io.PipeWriter
	// n counts the bytes passed on; broken is set once the stream stopped
	// short of the blob (a restart, or the reader gone).
	n      int64
	broken bool
}

// Write never fails: the download into the store goes on when the reader
// is gone.
// New returns a stream writing to pw.
func New(pw *io.PipeWriter) *Stream { return &Stream{pw: pw} }

func (s *Stream) Write(p []byte) (int, error) {
	if s.broken {
		return len(p), nil
	}
	n, err := s.pw.Write(p)
	s.n += int64(n)
	if err != nil {
		s.broken = true
	}
	return len(p), nil
}

// Restart breaks the stream: the download begins again at byte 0. A nil
// stream ignores it.
func (s *Stream) Restart() {
	if s == nil || s.broken {
		return
	}
	s.broken = true
	s.pw.CloseWithError(ErrRestarted)
}

// Complete reports whether the reader was given the whole blob of size.
func (s *Stream) Complete(size int64) bool { return !s.broken && s.n == size }
