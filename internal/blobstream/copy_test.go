package blobstream

import (
	"bytes"
	"io"
	"testing"
)

type sizes []int

func (s *sizes) Write(p []byte) (int, error) { *s = append(*s, len(p)); return len(p), nil }

// TestCopyWritesLargeChunks: a download is written on (to the store and
// the pipe) CopyBuffer bytes at a time, not io.Copy's 32 KiB.
func TestCopyWritesLargeChunks(t *testing.T) {
	var got sizes
	src := io.LimitReader(bytes.NewReader(make([]byte, 3*CopyBuffer)), 3*CopyBuffer) // hides WriterTo
	if n, err := Copy(&got, src); n != 3*CopyBuffer || err != nil {
		t.Fatalf("Copy = %d, %v", n, err)
	}
	if len(got) != 3 || got[0] != CopyBuffer {
		t.Fatalf("writes of %v bytes, want 3 of %d", got, CopyBuffer)
	}
}
