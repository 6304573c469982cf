//go:build linux

package fdfile

import (
	"bytes"
	"io"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/builder-dev/builder/internal/testutil"
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

// TestOpenDirSearchOnly: a directory its owner may search and write but
// not read (0311) opens, as a path through it would resolve, and entries
// are made in it through the descriptor. Run as root, the test drops to
// another owner's file-system ids on its thread, which also drops the
// capabilities that override permissions.
func TestOpenDirSearchOnly(t *testing.T) {
	dir := testutil.SearchOnlyDir(t, 65534)
	var d Dir
	var err error
	testutil.AsFSUser(t, 65534, func() {
		if d, err = OpenDir(unix.AT_FDCWD, dir); err == nil {
			err = unix.Mkdirat(d.FD, "sub", 0o755)
			unix.Close(d.FD)
		}
	})
	if err != nil {
		t.Fatalf("OpenDir of a 0311 directory and mkdir in it, as its owner: %v", err)
	}
	if d.GID != 65534 {
		t.Errorf("GID = %d, want 65534", d.GID)
	}
}

// TestDirsBeneath keeps the directories reached without a symlink: not
// one behind a symlink, inside or out of the root, nor a file or a
// missing name.
func TestDirsBeneath(t *testing.T) {
	root, outside := t.TempDir(), t.TempDir()
	os.MkdirAll(filepath.Join(root, "a/b"), 0o755)
	os.MkdirAll(filepath.Join(outside, "b"), 0o755)
	os.WriteFile(filepath.Join(root, "f"), nil, 0o644)
	os.Symlink("a", filepath.Join(root, "in"))
	os.Symlink(outside, filepath.Join(root, "out"))
	got, err := DirsBeneath(root, []string{"a/b", "in/b", "out/b", "out", "f", "gone", "a"})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "a/b"}; !slices.Equal(got, want) {
		t.Errorf("DirsBeneath = %q, want %q", got, want)
	}
}
