//go:build linux

package fdfile

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestUmask: the umask read from /proc is the one umask(2) reports.
func TestUmask(t *testing.T) {
	old := unix.Umask(0o022)
	unix.Umask(old)
	if got := Umask(); got != old {
		t.Errorf("Umask() = %#o, want %#o", got, old)
	}
}

// TestFile writes, seeks over a hole and truncates through a descriptor.
func TestFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	fd, err := unix.Open(p, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_CLOEXEC, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	f := File{FD: fd, Path: p}
	if n, err := f.Write([]byte("ab")); n != 2 || err != nil {
		t.Fatalf("Write = %d, %v", n, err)
	}
	if off, err := f.Seek(3, io.SeekCurrent); off != 5 || err != nil {
		t.Fatalf("Seek = %d, %v, want 5", off, err)
	}
	if err := f.Truncate(6); err != nil {
		t.Fatal(err)
	}
	unix.Close(fd)
	if b, _ := os.ReadFile(p); !bytes.Equal(b, []byte("ab\x00\x00\x00\x00")) {
		t.Errorf("file = %q", b)
	}
	if _, err := f.Write([]byte("x")); err == nil || !bytes.Contains([]byte(err.Error()), []byte(p)) {
		t.Errorf("Write on a closed descriptor = %v, want an error naming %s", err, p)
	}
}
