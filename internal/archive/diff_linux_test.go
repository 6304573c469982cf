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

// TestDiffStatOfListedRegular: an entry listed as a regular file is
// stat'ed through the descriptor it is read by; one replaced since the
// listing (a FIFO, a symlink) is stat'ed by name as what it now is, and
// not left open (nor blocked on).
func TestDiffStatOfListedRegular(t *testing.T) {
	dir := t.TempDir()
	for _, n := range []string{"file", "fifo", "link"} {
		if err := os.WriteFile(filepath.Join(dir, n), []byte("hello"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	dirfd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dirfd)
	entries, err := listEntries(dirfd, dir)
	if err != nil {
		t.Fatal(err)
	}
	// The swaps, after the listing.
	for _, n := range []string{"fifo", "link"} {
		if err := os.Remove(filepath.Join(dir, n)); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Mkfifo(filepath.Join(dir, "fifo"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("file", filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	want := map[string]struct {
		mode uint32
		open bool
	}{"file": {unix.S_IFREG, true}, "fifo": {unix.S_IFIFO, false}, "link": {unix.S_IFLNK, false}}
	for i := range entries {
		e := &entries[i]
		if !e.regular {
			t.Errorf("listEntries: %s not listed as a regular file", e.name)
		}
		f := entryFile{dir: dirfd, name: e.name, path: filepath.Join(dir, e.name), fd: -1}
		if err := f.stat(e); err != nil {
			t.Fatalf("stat(%s) = %v", e.name, err)
		}
		w := want[e.name]
		if got := e.st.Mode & unix.S_IFMT; got != w.mode || (f.fd >= 0) != w.open {
			t.Errorf("stat(%s): type %#o, open %v; want %#o, open %v", e.name, got, f.fd >= 0, w.mode, w.open)
		}
		if w.open && e.st.Size != 5 {
			t.Errorf("stat(%s): size %d, want 5", e.name, e.st.Size)
		}
		f.close()
	}
}
