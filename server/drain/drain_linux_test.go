package drain

import (
	"os"
	"syscall"
	"testing"
	"time"
)

// TestSecondSignal: the channel closes at the second SIGINT, not the
// first (which ends Serve's ctx).
func TestSecondSignal(t *testing.T) {
	now := SecondSignal()
	syscall.Kill(os.Getpid(), syscall.SIGINT)
	select {
	case <-now:
		t.Fatal("closed at the first signal")
	case <-time.After(200 * time.Millisecond):
	}
	syscall.Kill(os.Getpid(), syscall.SIGINT)
	select {
	case <-now:
	case <-time.After(5 * time.Second):
		t.Fatal("not closed 5 s after the second signal")
	}
}
