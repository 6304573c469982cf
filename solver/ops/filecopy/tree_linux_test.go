//go:build linux

package filecopy

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/builder-dev/builder/internal/archive"
	"github.com/builder-dev/builder/internal/testutil"
	"github.com/builder-dev/builder/llb"
	"github.com/builder-dev/builder/source/localctx"
	"golang.org/x/sys/unix"
)

func mustDo(t *testing.T, errs ...error) {
	t.Helper()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// copyContext runs COPY <srcs> <dest> from the context dir ctxDir into
// root, as the solver does.
func copyContext(t *testing.T, ctxDir, root, dest string, excludes []string, srcs ...string) error {
	t.Helper()
	tree, err := localctx.NewTree(ctxDir, excludes)
	if err != nil {
		t.Fatal(err)
	}
	return Copy(t.Context(), root, tree, llb.CopyOp{Sources: srcs, Dest: dest}, false, nil)
}

// TestCopyTreeKeepsMetadata copies a directory of every kind of entry
// over an existing tree: modes (with setuid), nanosecond mtimes, symlinks
// (not followed, whatever they point at), hard links, fifos; an existing
// directory is merged, an existing file in the way of a directory
// replaced, and everything becomes 0:0. Files are copied in turn with one
// core, by workers with more.
func TestCopyTreeKeepsMetadata(t *testing.T) {
	testutil.RequiresRoot(t)
	for _, procs := range []int{1, 2} {
		t.Run(fmt.Sprintf("GOMAXPROCS=%d", procs), func(t *testing.T) {
			defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
			testCopyTreeKeepsMetadata(t)
		})
	}
}

func testCopyTreeKeepsMetadata(t *testing.T) {
	ctxDir, root := t.TempDir(), t.TempDir()
	mtime := time.Date(2020, 1, 2, 3, 4, 5, 123456789, time.UTC)
	mustDo(t,
		os.MkdirAll(filepath.Join(ctxDir, "a/b"), 0o750),
		os.WriteFile(filepath.Join(ctxDir, "a/b/f"), []byte("hello"), 0o640),
		os.WriteFile(filepath.Join(ctxDir, "a/run"), []byte("#!/bin/sh"), 0o755),
		os.Chmod(filepath.Join(ctxDir, "a/run"), os.ModeSetuid|0o755),
		os.Link(filepath.Join(ctxDir, "a/b/f"), filepath.Join(ctxDir, "a/h")),
		os.Symlink("../../../../etc/passwd", filepath.Join(ctxDir, "a/up")),
		unix.Mkfifo(filepath.Join(ctxDir, "a/fifo"), 0o600),
		os.Lchown(filepath.Join(ctxDir, "a/b/f"), 1000, 1000),
		os.Chtimes(filepath.Join(ctxDir, "a/b/f"), mtime, mtime),
		os.Chtimes(filepath.Join(ctxDir, "a/b"), mtime, mtime),
		// In the destination: a directory to merge into, a file where
		// the copy puts a directory.
		os.MkdirAll(filepath.Join(root, "data/a"), 0o755),
		os.WriteFile(filepath.Join(root, "data/a/keep"), nil, 0o644),
		os.WriteFile(filepath.Join(root, "data/a/b"), []byte("in the way"), 0o644),
		os.WriteFile(filepath.Join(root, "data/a/run"), []byte("old"), 0o600),
		os.MkdirAll(filepath.Join(root, "data/a/fifo/sub"), 0o755),
	)
	mustDo(t, copyContext(t, ctxDir, root, "/data/", nil, "."))

	check := func(rel string, mode os.FileMode) os.FileInfo {
		t.Helper()
		fi, err := os.Lstat(filepath.Join(root, "data", rel))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != mode {
			t.Errorf("%s: mode %v, want %v", rel, fi.Mode(), mode)
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != 0 || st.Gid != 0 {
			t.Errorf("%s: owner %d:%d, want 0:0", rel, st.Uid, st.Gid)
		}
		return fi
	}
	check("a", os.ModeDir|0o750)
	check("a/keep", 0o644)
	if fi := check("a/b", os.ModeDir|0o750); !fi.ModTime().Equal(mtime) {
		t.Errorf("a/b: mtime %v, want %v", fi.ModTime(), mtime)
	}
	f := check("a/b/f", 0o640)
	if !f.ModTime().Equal(mtime) {
		t.Errorf("a/b/f: mtime %v, want %v", f.ModTime(), mtime)
	}
	if b, _ := os.ReadFile(filepath.Join(root, "data/a/b/f")); string(b) != "hello" {
		t.Errorf("a/b/f = %q, want hello", b)
	}
	check("a/run", os.ModeSetuid|0o755)
	if b, _ := os.ReadFile(filepath.Join(root, "data/a/run")); string(b) != "#!/bin/sh" {
		t.Errorf("a/run = %q, want the context's", b)
	}
	if h := check("a/h", 0o640); !os.SameFile(f, h) {
		t.Error("a/h is not a hard link of a/b/f")
	}
	check("a/up", os.ModeSymlink|0o777)
	if target, _ := os.Readlink(filepath.Join(root, "data/a/up")); target != "../../../../etc/passwd" {
		t.Errorf("a/up -> %q, want the context's target", target)
	}
	check("a/fifo", os.ModeNamedPipe|0o600)
}

// TestCopyTreeDestinationSymlinksStayInRoot tries to make the copy write
// outside the root through symlinks already in the destination: at the
// destination itself (resolved in the root), at directories and at files
// the copy writes. Nothing may appear or change outside the root.
func TestCopyTreeDestinationSymlinksStayInRoot(t *testing.T) {
	testutil.RequiresRoot(t)
	base := t.TempDir()
	ctxDir, root, outside := filepath.Join(base, "ctx"), filepath.Join(base, "root"), filepath.Join(base, "outside")
	mustDo(t,
		os.MkdirAll(filepath.Join(ctxDir, "sub"), 0o755),
		os.WriteFile(filepath.Join(ctxDir, "sub/evil"), []byte("x"), 0o644),
		os.MkdirAll(filepath.Join(ctxDir, "abs"), 0o755),
		os.WriteFile(filepath.Join(ctxDir, "abs/evil"), []byte("x"), 0o644),
		os.WriteFile(filepath.Join(ctxDir, "file"), []byte("x"), 0o644),
		os.MkdirAll(filepath.Join(root, "data"), 0o755),
		os.MkdirAll(outside, 0o755),
		os.WriteFile(filepath.Join(outside, "file"), []byte("secret"), 0o644),
		os.Symlink("../../outside", filepath.Join(root, "data/sub")),
		os.Symlink(outside, filepath.Join(root, "data/abs")),
		os.Symlink(filepath.Join(outside, "file"), filepath.Join(root, "data/file")),
		os.Symlink("../../../outside", filepath.Join(root, "link")),
	)
	mustDo(t, copyContext(t, ctxDir, root, "/data/", nil, "."))
	// The destination is a symlink out of the root: resolved in it.
	mustDo(t, copyContext(t, ctxDir, root, "/link/", nil, "."))
	// One file onto a symlink, and into a directory through one.
	mustDo(t, copyContext(t, ctxDir, root, "/data/file", nil, "file"))
	mustDo(t, copyContext(t, ctxDir, root, "/link/sub/", nil, "file"))

	entries, err := os.ReadDir(outside)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Errorf("outside the root holds %d entries, want only its own file", len(entries))
	}
	if b, _ := os.ReadFile(filepath.Join(outside, "file")); string(b) != "secret" {
		t.Errorf("outside/file = %q: written through a symlink", b)
	}
	for _, rel := range []string{"data/sub/evil", "data/abs/evil", "outside/sub/evil", "outside/file", "outside/sub/file"} {
		fi, err := os.Lstat(filepath.Join(root, rel))
		if err != nil || !fi.Mode().IsRegular() {
			t.Errorf("%s in the root: %v, %v; want the copied file", rel, fi, err)
		}
	}
}

// TestCopyTreeExcludes checks --exclude and .dockerignore exceptions in
// the descriptor walk: an excluded directory appears only as the parent of
// what an exception brings back.
func TestCopyTreeExcludes(t *testing.T) {
	ctxDir, root := t.TempDir(), t.TempDir()
	for _, p := range []string{"skip/a", "skip/keep", "drop/x", "ok/y"} {
		mustDo(t, os.MkdirAll(filepath.Join(ctxDir, filepath.Dir(p)), 0o755),
			os.WriteFile(filepath.Join(ctxDir, p), []byte(p), 0o644))
	}
	tree, err := localctx.NewTree(ctxDir, []string{"skip", "drop", "!skip/keep"})
	if err != nil {
		t.Fatal(err)
	}
	c, err := newCopier(t.Context(), root, tree, llb.CopyOp{Sources: []string{"."}, Dest: "/"}, false, &archive.Owner{UID: os.Getuid(), GID: os.Getgid()})
	if err != nil {
		t.Fatal(err)
	}
	mustDo(t, c.copyDir(ctxDir, ".", "/"))
	for p, want := range map[string]bool{"skip/keep": true, "skip/a": false, "drop": false, "ok/y": true} {
		if _, err := os.Lstat(filepath.Join(root, p)); (err == nil) != want {
			t.Errorf("%s copied: %v, want %v", p, err == nil, want)
		}
	}
}

// BenchmarkCopyTree copies 2,000 small files in 20 directories, the shape
// of the bigcopy case (bench/peers); -cpu 1,2 compares the copy in turn
// with the workers.
func BenchmarkCopyTree(b *testing.B) {
	ctxDir := b.TempDir()
	data := make([]byte, 2500)
	for i := range data {
		data[i] = byte('0' + i%10)
	}
	for d := range 20 {
		dir := filepath.Join(ctxDir, "files", fmt.Sprintf("d%02d", d))
		if err := os.MkdirAll(dir, 0o755); err != nil {
			b.Fatal(err)
		}
		for f := range 100 {
			if err := os.WriteFile(filepath.Join(dir, fmt.Sprintf("f%03d", f)), data, 0o644); err != nil {
				b.Fatal(err)
			}
		}
	}
	tree, err := localctx.NewTree(ctxDir, nil)
	if err != nil {
		b.Fatal(err)
	}
	owner := &archive.Owner{UID: os.Getuid(), GID: os.Getgid()}
	for b.Loop() {
		root := b.TempDir()
		if err := Copy(b.Context(), root, tree, llb.CopyOp{Sources: []string{"."}, Dest: "/data/"}, false, owner); err != nil {
			b.Fatal(err)
		}
	}
}

// TestCopyFromSymlinkedRoots copies from a context directory that is
// itself a symlink, into a root that is one too, as a build does when the
// context or the state directory is reached through a symlink: the roots
// are the caller's and are followed; nothing below them is.
func TestCopyFromSymlinkedRoots(t *testing.T) {
	base := t.TempDir()
	realCtx, realRoot := filepath.Join(base, "ctx"), filepath.Join(base, "root")
	ctxLink, rootLink := filepath.Join(base, "ctxlink"), filepath.Join(base, "rootlink")
	mustDo(t,
		os.MkdirAll(filepath.Join(realCtx, "d"), 0o755),
		os.WriteFile(filepath.Join(realCtx, "a.txt"), []byte("a"), 0o644),
		os.WriteFile(filepath.Join(realCtx, "d/b.txt"), []byte("b"), 0o644),
		os.Mkdir(realRoot, 0o755),
		os.Symlink(realCtx, ctxLink),
		os.Symlink("root", rootLink),
	)
	tree, err := localctx.NewTree(ctxLink, nil)
	if err != nil {
		t.Fatal(err)
	}
	owner := &archive.Owner{UID: os.Getuid(), GID: os.Getgid()}
	for _, op := range []llb.CopyOp{
		{Sources: []string{"."}, Dest: "/app"},
		{Sources: []string{"a.txt"}, Dest: "/"},
		{Sources: []string{"d"}, Dest: "/"},
		{Inline: []llb.InlineFile{{Path: "doc", Data: "x", Mode: 0o644}}, Dest: "/"},
	} {
		mustDo(t, Copy(t.Context(), rootLink, tree, op, false, owner))
	}
	mustDo(t, CopyTree(t.Context(), rootLink, tree, "."))
	for p, want := range map[string]string{"app/a.txt": "a", "app/d/b.txt": "b", "a.txt": "a", "b.txt": "b", "doc": "x", "d/b.txt": "b"} {
		if b, err := os.ReadFile(filepath.Join(realRoot, p)); err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", p, b, err, want)
		}
	}
}

// TestCopyRegularSwappedForFIFO replaces a source file by a FIFO between
// its stat and its open: the copy must fail at once, not block on it.
func TestCopyRegularSwappedForFIFO(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	p := filepath.Join(src, "f")
	mustDo(t, os.WriteFile(p, []byte("hello"), 0o644))
	var st unix.Stat_t
	mustDo(t, unix.Lstat(p, &st), os.Remove(p), unix.Mkfifo(p, 0o644))
	from, err := openDir(src)
	mustDo(t, err)
	defer from.close()
	to, err := openDir(dst)
	mustDo(t, err)
	defer to.close()
	c := &copier{uid: os.Getuid(), gid: os.Getgid()}
	done := make(chan error, 1)
	go func() { done <- c.copyRegular(from, "f", to, "f", &st, nil, "f") }()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("copied a file swapped for a FIFO")
		}
	case <-time.After(5 * time.Second):
		if w, err := os.OpenFile(p, os.O_RDWR, 0); err == nil {
			w.Close()
		}
		t.Fatal("the copy of a file swapped for a FIFO blocked on it")
	}
}

// TestCopyDepth copies a tree archive.MaxDepth directories deep, and
// refuses one deeper (its walk would hold two descriptors per level) with
// an error naming where.
func TestCopyDepth(t *testing.T) {
	for _, n := range []int{archive.MaxDepth, archive.MaxDepth + 1} {
		ctxDir := t.TempDir()
		// Made by descriptors: the path of the deepest is over PATH_MAX.
		fd, err := unix.Open(ctxDir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
		mustDo(t, err)
		for range n {
			mustDo(t, unix.Mkdirat(fd, "d", 0o755))
			sub, err := unix.Openat(fd, "d", unix.O_RDONLY|unix.O_DIRECTORY, 0)
			unix.Close(fd)
			mustDo(t, err)
			fd = sub
		}
		unix.Close(fd)
		err = copyContext(t, ctxDir, t.TempDir(), "/", nil, ".")
		if n <= archive.MaxDepth && err != nil {
			t.Fatalf("a tree %d deep: %v", n, err)
		}
		if n > archive.MaxDepth && (!errors.Is(err, archive.ErrTooDeep) || !strings.Contains(err.Error(), ctxDir+"/d/d/")) {
			t.Fatalf("a tree %d deep: %v, want ErrTooDeep naming the directory", n, err)
		}
	}
}
