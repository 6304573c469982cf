package blobstream

import (
	"bytes"
	"errors"
	"io"
	"math/rand/v2"
	"testing"
	"time"
)

// TestPipeCarriesBytesInOrder: writes and reads of odd sizes through a
// small ring (wrapping many times) give back exactly the bytes written,
// then io.EOF.
func TestPipeCarriesBytesInOrder(t *testing.T) {
	want := make([]byte, 1<<20)
	for i := range want {
		want[i] = byte(rand.IntN(256))
	}
	pr, pw := Pipe(1000)
	go func() {
		for b := want; len(b) > 0; {
			n := min(len(b), 1+rand.IntN(3000))
			if _, err := pw.Write(b[:n]); err != nil {
				pw.CloseWithError(err)
				return
			}
			b = b[n:]
		}
		pw.Close()
	}()
	var got bytes.Buffer
	buf := make([]byte, 777)
	for {
		n, err := pr.Read(buf)
		got.Write(buf[:n])
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(got.Bytes(), want) {
		t.Fatalf("read %d bytes, not the %d written", got.Len(), len(want))
	}
}

// TestPipeBounded: a writer blocks once size bytes are unread, and goes
// on when the reader takes some.
func TestPipeBounded(t *testing.T) {
	pr, pw := Pipe(8)
	if n, err := pw.Write([]byte("12345678")); n != 8 || err != nil {
		t.Fatalf("Write = %d, %v; want 8, nil", n, err)
	}
	done := make(chan struct{})
	go func() {
		pw.Write([]byte("9"))
		close(done)
	}()
	select {
	case <-done:
		t.Fatal("a Write into a full pipe returned")
	case <-time.After(50 * time.Millisecond):
	}
	b := make([]byte, 3)
	if n, _ := pr.Read(b); string(b[:n]) != "123" {
		t.Fatalf("read %q, want 123", b[:n])
	}
	<-done
}

// TestPipeWriterError: the reader gets what was written before the
// writer closed with an error, then the error (a restarted download is
// never an end of file).
func TestPipeWriterError(t *testing.T) {
	pr, pw := Pipe(64)
	pw.Write([]byte("abc"))
	pw.CloseWithError(ErrRestarted)
	pw.CloseWithError(nil) // the download's own end, later: ignored
	got, err := io.ReadAll(pr)
	if string(got) != "abc" || !errors.Is(err, ErrRestarted) {
		t.Fatalf("ReadAll = %q, %v; want abc, ErrRestarted", got, err)
	}
}

// TestPipeReaderGone: once the reader closes its end, a blocked writer
// and later writes fail with its error, and a Stream over the pipe goes
// on accepting the download while reporting it incomplete.
func TestPipeReaderGone(t *testing.T) {
	pr, pw := Pipe(4)
	s := New(pw)
	errGone := errors.New("unpacking ended")
	go func() {
		time.Sleep(20 * time.Millisecond)
		pr.CloseWithError(errGone)
	}()
	if _, err := pw.Write([]byte("123456")); !errors.Is(err, errGone) {
		t.Fatalf("Write after the reader left: %v, want %v", err, errGone)
	}
	if n, err := s.Write([]byte("78")); n != 2 || err != nil {
		t.Fatalf("Stream.Write = %d, %v; want 2, nil", n, err)
	}
	if s.Complete(8) {
		t.Error("Complete after the reader left")
	}
}

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
