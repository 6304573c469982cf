package blobstream

import (
	"errors"
	"io"
	"testing"
)

// TestReaderGone: once the reader closes its end, writes still succeed
// (the download goes on into the store) and the stream is incomplete.
func TestReaderGone(t *testing.T) {
	pr, pw := io.Pipe()
	s := New(pw)
	go func() {
		buf := make([]byte, 3)
		io.ReadFull(pr, buf)
		pr.CloseWithError(errors.New("unpacking failed"))
	}()
	for range 3 {
		if n, err := s.Write([]byte("abcd")); n != 4 || err != nil {
			t.Fatalf("Write = %d, %v; want 4, nil", n, err)
		}
	}
	if s.Complete(12) {
		t.Error("Complete after the reader left")
	}
}

// TestRestart: a restarted download ends the reader's stream with
// ErrRestarted, and the stream is not complete even if as many bytes as
// the blob's size pass through afterwards.
func TestRestart(t *testing.T) {
	pr, pw := io.Pipe()
	s := New(pw)
	got := make(chan error, 1)
	go func() {
		_, err := io.ReadAll(pr)
		got <- err
	}()
	s.Write([]byte("ab"))
	s.Restart()
	if err := <-got; !errors.Is(err, ErrRestarted) {
		t.Errorf("the reader got %v, want ErrRestarted", err)
	}
	s.Write([]byte("abcd"))
	if s.Complete(4) {
		t.Error("Complete after a restart")
	}
	var none *Stream
	none.Restart() // a download without a stream
}

// TestComplete: every byte passed on, and only the declared size, is
// complete.
func TestComplete(t *testing.T) {
	pr, pw := io.Pipe()
	s := New(pw)
	go io.Copy(io.Discard, pr)
	s.Write([]byte("abcd"))
	s.Write([]byte("ef"))
	if !s.Complete(6) || s.Complete(7) {
		t.Errorf("Complete(6) = %v, Complete(7) = %v; want true, false", s.Complete(6), s.Complete(7))
	}
}
