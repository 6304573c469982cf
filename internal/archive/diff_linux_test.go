//go:build linux

package archive

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// TestDiffEntrySwappedForFIFO replaces a regular file by a FIFO between
// its stat and its open: the diff must fail at once, not block on the
// FIFO forever.
func TestDiffEntrySwappedForFIFO(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("hello"), 0o644); err != nil {
		t.Fatal(err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(dir, "f"), &st); err != nil {
		t.Fatal(err)
	}
	// The swap, after the stat.
	if err := os.Remove(filepath.Join(dir, "f")); err != nil {
		t.Fatal(err)
	}
	if err := unix.Mkfifo(filepath.Join(dir, "f"), 0o644); err != nil {
		t.Fatal(err)
	}
	dirfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dirfd)
	d := &differ{ctx: t.Context(), tw: tar.NewWriter(io.Discard), links: map[devIno]string{}, buf: make([]byte, 4096), xbuf: make([]byte, 4096)}
	f := entryFile{dir: dirfd, name: "f", path: filepath.Join(dir, "f"), fd: -1}
	done := make(chan error, 1)
	go func() { done <- d.entry(&f, "f", &st) }()
	select {
	case err := <-done:
		f.close()
		if err == nil || !strings.Contains(err.Error(), "no longer the regular file") {
			t.Fatalf("entry of a file swapped for a FIFO: %v, want an error", err)
		}
	case <-time.After(5 * time.Second):
		// Unblock the open so the goroutine ends.
		if w, err := os.OpenFile(filepath.Join(dir, "f"), os.O_RDWR, 0); err == nil {
			w.Close()
		}
		t.Fatal("entry of a file swapped for a FIFO blocked on it")
	}
}

// nest makes n directories "d" nested in dir, by descriptors: the path
// of the deepest is over PATH_MAX (so is any file's there, whose xattrs
// are read by path).
func nest(t *testing.T, dir string, n int) {
	t.Helper()
	fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	for range n {
		if err := unix.Mkdirat(fd, "d", 0o755); err != nil {
			t.Fatal(err)
		}
		sub, err := unix.Openat(fd, "d", unix.O_RDONLY|unix.O_DIRECTORY, 0)
		unix.Close(fd)
		if err != nil {
			t.Fatal(err)
		}
		fd = sub
	}
	unix.Close(fd)
}

// TestDiffDepth writes a tree MaxDepth directories deep, and refuses one
// deeper (its walk would hold a descriptor per level) with an error naming
// where.
func TestDiffDepth(t *testing.T) {
	t.Parallel()
	ok, deep := t.TempDir(), t.TempDir()
	nest(t, ok, MaxDepth)
	nest(t, deep, MaxDepth+1)
	if err := WriteDiff(t.Context(), ok, io.Discard, DiffOptions{}); err != nil {
		t.Fatalf("a tree %d deep: %v", MaxDepth, err)
	}
	err := WriteDiff(t.Context(), deep, io.Discard, DiffOptions{})
	if !errors.Is(err, ErrTooDeep) || !strings.Contains(err.Error(), deep+"/d/d/") {
		t.Fatalf("a tree %d deep: %v, want ErrTooDeep naming the directory", MaxDepth+1, err)
	}
}
