//go:build linux

package snapshot

import (
	"github.com/builder-dev/builder/internal/archive"
	"github.com/builder-dev/builder/internal/testutil"
	"maps"

	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

var copyTestTime = time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)

// copyTestBase is the base layer both modes start from.
func copyTestBase() []tarEntry {
	d := func(n string) tarEntry {
		return tarEntry{Name: n, Type: tar.TypeDir, Mode: 0o755, ModTime: copyTestTime}
	}
	f := func(n, c string) tarEntry {
		return tarEntry{Name: n, Type: tar.TypeReg, Mode: 0o644, ModTime: copyTestTime, Content: c}
	}
	owned := f("owned", "owned")
	owned.UID, owned.GID = 1000, 1001
	xa := f("xattr", "x")
	xa.Xattrs = map[string]string{"user.k": "v"}
	return []tarEntry{
		d("a/"), d("a/b/"), d("a/b/c/"), f("a/b/c/deep", "deep"),
		f("change", "aaaa"), f("chmod", "chmod"), f("delete", "delete"), f("same", "same"),
		d("dir/"), f("dir/x", "x"), f("dir/y", "y"),
		d("tree/"), d("tree/sub/"), f("tree/sub/z", "z"),
		f("tobedir", "file"), d("tobefile/"), f("tobefile/w", "w"),
		{Name: "link", Type: tar.TypeSymlink, Linkname: "same", ModTime: copyTestTime},
		f("hard1", "hard"), {Name: "hard2", Type: tar.TypeLink, Linkname: "hard1"},
		owned, xa,
	}
}

// copyTestSteps are the changes made in two layers on top of the base.
var copyTestSteps = []func(t *testing.T, root string){
	func(t *testing.T, root string) {
		p := func(n string) string { return filepath.Join(root, n) }
		must(t, os.WriteFile(p("new"), []byte("new"), 0o600))
		must(t, os.MkdirAll(p("newdir/sub"), 0o755))
		must(t, os.WriteFile(p("newdir/sub/f"), []byte("f"), 0o644))
		// Same size, same mtime, new content.
		must(t, os.WriteFile(p("change"), []byte("bbbb"), 0o644))
		must(t, os.Chtimes(p("change"), copyTestTime, copyTestTime))
		must(t, os.Chmod(p("chmod"), 0o600))
		must(t, os.Remove(p("delete")))
		must(t, os.RemoveAll(p("tree")))
		must(t, os.RemoveAll(p("dir")))
		must(t, os.Mkdir(p("dir"), 0o755))
		must(t, os.WriteFile(p("dir/x"), []byte("x2"), 0o644))
		must(t, os.Remove(p("tobedir")))
		must(t, os.Mkdir(p("tobedir"), 0o700))
		must(t, os.RemoveAll(p("tobefile")))
		must(t, os.WriteFile(p("tobefile"), []byte("now a file"), 0o644))
		must(t, os.WriteFile(p("a/b/c/new"), []byte("deeper"), 0o644))
		must(t, os.Remove(p("link")))
		must(t, os.Symlink("change", p("link")))
		must(t, os.WriteFile(p("n1"), []byte("linked"), 0o644))
		must(t, os.Link(p("n1"), p("n2")))
		must(t, unix.Mkfifo(p("fifo"), 0o644))
		must(t, unix.Lsetxattr(p("owned"), "user.new", []byte("1"), 0))
		must(t, unix.Lsetxattr(p("owned"), "security.capability", []byte(fileCap()), 0))
		must(t, os.Lchown(p("same"), 7, 8))
	},
	func(t *testing.T, root string) {
		p := func(n string) string { return filepath.Join(root, n) }
		must(t, os.Remove(p("new")))
		must(t, os.RemoveAll(p("newdir/sub")))
		// Not written to: hard1 and hard2 share an inode; overlay (with
		// index=off) copies up only the name written to and so splits
		// them, the copy mode keeps them one file, as a plain filesystem
		// does.
		must(t, os.Chmod(p("xattr"), 0o640))
		must(t, os.RemoveAll(p("a/b")))
		must(t, os.Remove(p("fifo")))
	},
}

// runCopyTestLayers builds the base and the layers of copyTestSteps with a
// snapshotter made with opts, and returns each layer's diff (times zeroed)
// and the final view.
func runCopyTestLayers(t *testing.T, opts ...Option) (diffs [][]byte, view []string) {
	s := newTestSnapshotter(t, opts...)
	must(t, s.Prepare("base"))
	if _, err := Apply(t.Context(), s.FS("base"), bytes.NewReader(makeTar(t, copyTestBase())), ApplyOptions{UserXattr: s.UserXattr()}); err != nil {
		t.Fatal(err)
	}
	must(t, s.Commit("base"))
	parents := []string{"base"}
	for i, step := range copyTestSteps {
		id := fmt.Sprintf("l%d", i)
		must(t, s.Prepare(id, parents...))
		// Let the clock move past the copy, as a real RUN would.
		time.Sleep(20 * time.Millisecond)
		err := s.WithMounts(t.Context(), [][]Mount{s.Mounts(id, parents)}, func(roots []string) error {
			step(t, roots[0])
			return nil
		})
		must(t, err)
		must(t, s.Commit(id))
		var buf bytes.Buffer
		must(t, WriteDiff(t.Context(), s.FS(id), &buf, DiffOptions{ZeroTimes: true}))
		diffs = append(diffs, buf.Bytes())
		parents = append([]string{id}, parents...)
	}
	err := s.WithMounts(t.Context(), [][]Mount{s.View(parents)}, func(roots []string) error {
		view = listTree(t, roots[0])
		return nil
	})
	must(t, err)
	return diffs, view
}

// TestCopyModeMatchesOverlay runs the same changes in both modes: the
// layers must be the same tars and the views the same trees.
func TestCopyModeMatchesOverlay(t *testing.T) {
	testutil.RequiresHostRoot(t)
	oDiffs, oView := runCopyTestLayers(t)
	cDiffs, cView := runCopyTestLayers(t, WithCopy(true))
	for i := range oDiffs {
		o, c := readTar(t, oDiffs[i]), readTar(t, cDiffs[i])
		if !bytes.Equal(oDiffs[i], cDiffs[i]) {
			t.Errorf("layer %d:\noverlay %q\ncopy    %q", i, entryNames(o), entryNames(c))
			for j := range min(len(o), len(c)) {
				if fmt.Sprint(o[j]) != fmt.Sprint(c[j]) {
					t.Errorf("first difference: overlay %+v, copy %+v", o[j], c[j])
					break
				}
			}
		}
	}
	if !slices.Equal(oView, cView) {
		t.Errorf("views differ:\noverlay %q\ncopy    %q", oView, cView)
	}
	// What the first layer must hold, whichever mode made it.
	want := []string{".wh.delete", ".wh.tree", "a/", "a/b/", "a/b/c/", "a/b/c/new", "change", "chmod",
		"dir/", "dir/.wh..wh..opq", "dir/x", "fifo", "link", "n1", "n2", "new", "newdir/", "newdir/sub/", "newdir/sub/f",
		"owned", "same", "tobedir/", "tobedir/.wh..wh..opq", "tobefile"}
	if got := entryNames(readTar(t, cDiffs[0])); !slices.Equal(got, want) {
		t.Errorf("copy mode layer 0 = %q, want %q", got, want)
	}
	for _, e := range readTar(t, cDiffs[0]) {
		if e.Name == "n2" && (e.Type != tar.TypeLink || e.Linkname != "n1") {
			t.Errorf("n2 = %+v, want a hard link to n1", e)
		}
		// Of the xattrs, a layer records only the capability.
		if e.Name == "owned" && (e.UID != 1000 || e.GID != 1001 || !maps.Equal(e.Xattrs, map[string]string{"security.capability": fileCap()})) {
			t.Errorf("owned = %+v, want owner 1000:1001 and only xattr security.capability", e)
		}
	}
}

// TestCopyModeLifecycle checks the copy mode's own files: the root
// directory while active, the kept view after Commit, nothing left by an
// empty layer, and Remove.
func TestCopyModeLifecycle(t *testing.T) {
	testutil.RequiresRoot(t)
	s := newTestSnapshotter(t, WithCopy(true), WithUserXattr(true)).(*copySnapshotter)
	if !s.CopyMode() {
		t.Fatal("CopyMode() = false")
	}
	must(t, s.Prepare("base"))
	must(t, os.WriteFile(filepath.Join(s.UpperDir("base"), "f"), []byte("f"), 0o644))
	must(t, s.Commit("base"))
	if _, err := os.Stat(filepath.Join(s.FS("base"), "f")); err != nil {
		t.Errorf("layer of base: %v", err)
	}
	if _, err := os.Stat(s.viewDir([]string{"base"})); err != nil {
		t.Errorf("view of base not kept: %v", err)
	}
	// An empty layer.
	must(t, s.Prepare("empty1", "base"))
	must(t, s.Commit("empty1"))
	if empty, err := s.IsEmpty("empty1"); err != nil || !empty {
		t.Errorf("IsEmpty(empty1) = %v, %v", empty, err)
	}
	entries, _ := os.ReadDir(s.dir("empty1"))
	if len(entries) != 1 || entries[0].Name() != "fs" {
		t.Errorf("empty1 holds %v, want only fs", entries)
	}
	// A view built from layers (no kept view), read-only.
	must(t, s.Prepare("top", "base"))
	must(t, os.Remove(filepath.Join(s.UpperDir("top"), "f")))
	must(t, s.Commit("top"))
	must(t, removeAll(filepath.Join(s.dir("top"), "views")))
	err := s.WithMounts(t.Context(), [][]Mount{s.View([]string{"top", "base"}), s.View([]string{"base"})}, func(roots []string) error {
		if names, _ := dirNames(roots[0]); len(names) != 0 {
			t.Errorf("View(top, base) holds %q, want nothing", names)
		}
		if b, err := os.ReadFile(filepath.Join(roots[1], "f")); err != nil || string(b) != "f" {
			t.Errorf("View(base)/f = %q, %v", b, err)
		}
		if err := os.WriteFile(filepath.Join(roots[1], "g"), nil, 0o644); err == nil {
			t.Error("writing into a view worked, want a read-only view")
		}
		return nil
	})
	must(t, err)
	var st unix.Stat_t
	must(t, unix.Lstat(filepath.Join(s.FS("top"), "f"), &st))
	if !archive.IsWhiteout(&st) {
		t.Errorf("top/f is %#o, want a whiteout", st.Mode)
	}
	must(t, s.Remove("top"))
	if _, err := os.Lstat(s.dir("top")); !os.IsNotExist(err) {
		t.Errorf("top after Remove: %v", err)
	}
	// A view of a missing snapshot fails at mount time, saying why.
	err = s.WithMounts(t.Context(), [][]Mount{s.View([]string{"missing"})}, func([]string) error { return nil })
	if err == nil || !strings.Contains(err.Error(), "missing") {
		t.Errorf("View(missing) mount = %v, want an error naming it", err)
	}
}

func TestProbeOverlay(t *testing.T) {
	testutil.RequiresRoot(t)
	dir := t.TempDir()
	if err := ProbeOverlay(t.Context(), dir, os.Getenv("BUILDER_TEST_USERXATTR") != ""); err != nil {
		t.Errorf("ProbeOverlay = %v, want nil on this machine", err)
	}
	if names, _ := dirNames(dir); len(names) != 0 {
		t.Errorf("ProbeOverlay left %q", names)
	}
	// A filesystem overlay cannot use as upper: overlay itself (no
	// d_type/xattr support), or here simply a missing directory.
	if err := ProbeOverlay(t.Context(), "/proc/self/fdinfo/nonexistent", false); err == nil {
		t.Error("ProbeOverlay on an unusable path = nil, want an error")
	}
}
