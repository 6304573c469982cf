//go:build linux

package snapshot

import (
	"bytes"
	"errors"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/builder-dev/builder/internal/testutil"
	"golang.org/x/sys/unix"
)

// The shared suite: every check runs against both Snapshotter
// implementations, as containerd's core/snapshots/testsuite does for its
// snapshotters. A check gets a fresh snapshotter and uses only the
// interface (and the layout both share).

type snapshotterCheck struct {
	name string
	// mounts is set for checks that mount (root or root in a user
	// namespace).
	mounts bool
	run    func(t *testing.T, s Snapshotter)
}

var snapshotterChecks = []snapshotterCheck{
	{"Lifecycle", false, checkLifecycle},
	{"BadIDs", false, checkBadIDs},
	{"EmptyCommit", false, checkEmptyCommit},
	{"UnsyncedCommit", true, checkUnsyncedCommit},
	{"WriteThroughMounts", true, checkWriteThroughMounts},
	{"ChangeFromLowerLayer", true, checkChangeFromLowerLayer},
	{"DeletedInChild", true, checkDeletedInChild},
	{"RecreatedDirectoryIsOpaque", true, checkRecreatedDirectory},
	{"Transitivity", true, checkTransitivity},
	{"ViewIsReadOnly", true, checkViewIsReadOnly},
	{"RemoveIntermediate", true, checkRemoveIntermediate},
	{"Metadata", true, checkMetadata},
}

// TestSnapshotters runs the shared suite against the overlay and the copy
// snapshotter. As root in the initial user namespace overlay uses the
// trusted.* xattrs; in a user namespace (rootless) userxattr.
func TestSnapshotters(t *testing.T) {
	userXattr := !initialUserNS()
	impls := []struct {
		name string
		opts []Option
	}{
		{"overlay", []Option{WithUserXattr(userXattr)}},
		{"copy", []Option{WithCopy(true), WithUserXattr(userXattr)}},
	}
	for _, impl := range impls {
		t.Run(impl.name, func(t *testing.T) {
			for _, c := range snapshotterChecks {
				t.Run(c.name, func(t *testing.T) {
					if c.mounts {
						testutil.RequiresRoot(t)
					}
					s := newTestSnapshotter(t, impl.opts...)
					if got := s.CopyMode(); got != (impl.name == "copy") {
						t.Fatalf("CopyMode() = %v for the %s snapshotter", got, impl.name)
					}
					c.run(t, s)
				})
			}
		})
	}
}

// initialUserNS reports whether the test runs in the initial user
// namespace.
func initialUserNS() bool {
	b, err := os.ReadFile("/proc/self/uid_map")
	return err == nil && strings.Join(strings.Fields(string(b)), " ") == "0 0 4294967295"
}

// layoutOf returns the directories both implementations share.
func layoutOf(t *testing.T, s Snapshotter) *layout {
	t.Helper()
	switch s := s.(type) {
	case *overlaySnapshotter:
		return &s.layout
	case *copySnapshotter:
		return &s.layout
	}
	t.Fatalf("unknown snapshotter %T", s)
	return nil
}

// step prepares id on parents, runs change in its mounted root, and
// commits it.
func step(t *testing.T, s Snapshotter, id string, parents []string, change func(root string)) {
	t.Helper()
	must(t, s.Prepare(id, parents...))
	err := s.WithMounts(t.Context(), [][]Mount{s.Mounts(id, parents)}, func(roots []string) error {
		change(roots[0])
		return nil
	})
	if err != nil {
		t.Fatalf("WithMounts(Mounts(%s)) = %v", id, err)
	}
	must(t, s.Commit(id))
}

// view lists the tree of View(parents).
func view(t *testing.T, s Snapshotter, parents ...string) []string {
	t.Helper()
	var tree []string
	err := s.WithMounts(t.Context(), [][]Mount{s.View(parents)}, func(roots []string) error {
		tree = listTree(t, roots[0])
		return nil
	})
	if err != nil {
		t.Fatalf("WithMounts(View(%v)) = %v", parents, err)
	}
	return tree
}

// layerNames lists the tar entry names of id's layer.
func layerNames(t *testing.T, s Snapshotter, id string) []string {
	t.Helper()
	var buf bytes.Buffer
	must(t, WriteDiff(t.Context(), s.FS(id), &buf, DiffOptions{}))
	return entryNames(readTar(t, buf.Bytes()))
}

func write(t *testing.T, p, content string) {
	t.Helper()
	must(t, os.MkdirAll(filepath.Dir(p), 0o755))
	must(t, os.WriteFile(p, []byte(content), 0o644))
}

// checkUnsyncedCommit: CommitUnsynced seals the layer as Commit does
// (the workdir gone, the layer final, a parent for the next snapshot);
// only the flush is left to Sync.
func checkUnsyncedCommit(t *testing.T, s Snapshotter) {
	must(t, s.Prepare("a"))
	err := s.WithMounts(t.Context(), [][]Mount{s.Mounts("a", nil)}, func(roots []string) error {
		write(t, filepath.Join(roots[0], "f"), "x")
		return nil
	})
	must(t, err)
	must(t, s.CommitUnsynced("a"))
	if _, err := os.Lstat(layoutOf(t, s).work("a")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the workdir after CommitUnsynced: %v, want it gone", err)
	}
	if got := layerNames(t, s, "a"); !slices.Equal(got, []string{"f"}) {
		t.Errorf("layer after CommitUnsynced = %v, want [f]", got)
	}
	f, err := s.OpenSync()
	must(t, err)
	must(t, f.Sync())
	must(t, f.Close())
	step(t, s, "b", []string{"a"}, func(root string) { write(t, filepath.Join(root, "g"), "y") })
	if got := strings.Join(view(t, s, "b", "a"), " "); !strings.Contains(got, "f ----------=x g ----------=y") {
		t.Errorf("view of b on a = %v, want f (x) and g (y)", got)
	}
}

func checkLifecycle(t *testing.T, s Snapshotter) {
	if err := s.Prepare("a"); err != nil {
		t.Fatalf("Prepare(a) = %v", err)
	}
	if err := s.Prepare("a"); !errors.Is(err, os.ErrExist) {
		t.Errorf("Prepare(a) again = %v, want ErrExist", err)
	}
	if !s.Exists("a") || s.Exists("b") {
		t.Errorf("Exists(a), Exists(b) = %v, %v, want true, false", s.Exists("a"), s.Exists("b"))
	}
	if empty, err := s.IsEmpty("a"); err != nil || !empty {
		t.Errorf("IsEmpty(a) = %v, %v, want true, nil", empty, err)
	}
	// Writing into the layer directory directly, as Apply and downloads do.
	must(t, os.WriteFile(filepath.Join(s.FS("a"), "f"), bytes.Repeat([]byte{1}, 10000), 0o644))
	if empty, err := s.IsEmpty("a"); err != nil || empty {
		t.Errorf("IsEmpty(a) = %v, %v, want false, nil", empty, err)
	}
	if n, err := s.Usage("a"); err != nil || n < 10000 {
		t.Errorf("Usage(a) = %d, %v, want >= 10000", n, err)
	}
	// What overlay leaves behind: work/work with mode 000.
	l := layoutOf(t, s)
	must(t, os.Mkdir(filepath.Join(l.work("a"), "work"), 0))
	if err := s.Commit("a"); err != nil {
		t.Fatalf("Commit(a) = %v", err)
	}
	if _, err := os.Lstat(l.work("a")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("work dir after Commit: %v, want it gone", err)
	}
	if b, err := os.ReadFile(filepath.Join(s.FS("a"), "f")); err != nil || len(b) != 10000 {
		t.Errorf("layer of a after Commit: %d bytes, %v; want the file written into it", len(b), err)
	}
	if err := s.Commit("missing"); err == nil {
		t.Error("Commit(missing) = nil, want error")
	}
	if err := s.Remove("a"); err != nil {
		t.Fatalf("Remove(a) = %v", err)
	}
	if s.Exists("a") {
		t.Error("Exists(a) after Remove = true")
	}
	if err := s.Remove("a"); err != nil {
		t.Errorf("Remove(a) again = %v, want nil", err)
	}
	names, _ := os.ReadDir(s.Root())
	if len(names) != 1 || names[0].Name() != emptyDir {
		t.Errorf("root after Remove holds %v, want only %s", names, emptyDir)
	}
}

func checkBadIDs(t *testing.T, s Snapshotter) {
	for _, id := range []string{"", ".", "..", "empty", ".hidden", "a/b", "a,b", "a:b"} {
		if err := s.Prepare(id); err == nil {
			t.Errorf("Prepare(%q) = nil, want error", id)
		}
		if err := s.Remove(id); err == nil {
			t.Errorf("Remove(%q) = nil, want error", id)
		}
		if s.Exists(id) {
			t.Errorf("Exists(%q) = true", id)
		}
	}
	if _, err := NewSnapshotter(filepath.Join(t.TempDir(), "a:b")); err == nil {
		t.Error("NewSnapshotter(path with ':') = nil, want error")
	}
}

// checkEmptyCommit: a snapshot on a parent that changes nothing has an
// empty layer and leaves nothing but it behind.
func checkEmptyCommit(t *testing.T, s Snapshotter) {
	must(t, s.Prepare("base"))
	write(t, filepath.Join(s.FS("base"), "f"), "f")
	must(t, s.Commit("base"))
	must(t, s.Prepare("top", "base"))
	must(t, s.Commit("top"))
	if empty, err := s.IsEmpty("top"); err != nil || !empty {
		t.Errorf("IsEmpty(top) = %v, %v, want true", empty, err)
	}
	if names, _ := dirNames(layoutOf(t, s).dir("top")); !slices.Equal(names, []string{"fs"}) {
		t.Errorf("top holds %q after Commit, want only fs", names)
	}
}

func checkWriteThroughMounts(t *testing.T, s Snapshotter) {
	step(t, s, "a", nil, func(root string) {
		write(t, filepath.Join(root, "dir/f"), "hello")
	})
	if got, want := layerNames(t, s, "a"), []string{"dir/", "dir/f"}; !slices.Equal(got, want) {
		t.Errorf("layer of a = %q, want %q", got, want)
	}
	if got, want := view(t, s, "a"), []string{". d---------", "dir d---------", "dir/f ----------=hello"}; !slices.Equal(got, want) {
		t.Errorf("View(a) = %q, want %q", got, want)
	}
}

// checkChangeFromLowerLayer: a child sees its parent's files, and a file it
// changes goes into its layer alone; the parent is not touched.
func checkChangeFromLowerLayer(t *testing.T, s Snapshotter) {
	step(t, s, "base", nil, func(root string) {
		write(t, filepath.Join(root, "keep"), "keep")
		write(t, filepath.Join(root, "change"), "old")
	})
	step(t, s, "top", []string{"base"}, func(root string) {
		if b, err := os.ReadFile(filepath.Join(root, "keep")); err != nil || string(b) != "keep" {
			t.Errorf("keep from the lower layer = %q, %v", b, err)
		}
		write(t, filepath.Join(root, "change"), "new")
	})
	if got, want := layerNames(t, s, "top"), []string{"change"}; !slices.Equal(got, want) {
		t.Errorf("layer of top = %q, want %q", got, want)
	}
	if got, want := view(t, s, "top", "base"), []string{". d---------", "change ----------=new", "keep ----------=keep"}; !slices.Equal(got, want) {
		t.Errorf("View(top, base) = %q, want %q", got, want)
	}
	if got, want := view(t, s, "base"), []string{". d---------", "change ----------=old", "keep ----------=keep"}; !slices.Equal(got, want) {
		t.Errorf("View(base) after top = %q, want %q", got, want)
	}
}

// checkDeletedInChild: deleting a parent's file and directory gives
// whiteouts in the child's layer and hides them in its view.
func checkDeletedInChild(t *testing.T, s Snapshotter) {
	step(t, s, "base", nil, func(root string) {
		write(t, filepath.Join(root, "gone"), "x")
		write(t, filepath.Join(root, "dir/sub/f"), "y")
		write(t, filepath.Join(root, "stay"), "z")
	})
	step(t, s, "top", []string{"base"}, func(root string) {
		must(t, os.Remove(filepath.Join(root, "gone")))
		must(t, os.RemoveAll(filepath.Join(root, "dir")))
	})
	var st unix.Stat_t
	must(t, unix.Lstat(filepath.Join(s.FS("top"), "gone"), &st))
	if st.Mode&unix.S_IFMT != unix.S_IFCHR || st.Rdev != 0 {
		t.Errorf("top/gone is %#o, want a 0/0 whiteout", st.Mode)
	}
	if got, want := layerNames(t, s, "top"), []string{".wh.dir", ".wh.gone"}; !slices.Equal(got, want) {
		t.Errorf("layer of top = %q, want %q", got, want)
	}
	if got, want := view(t, s, "top", "base"), []string{". d---------", "stay ----------=z"}; !slices.Equal(got, want) {
		t.Errorf("View(top, base) = %q, want %q", got, want)
	}
}

// checkRecreatedDirectory: a directory deleted and made again is opaque:
// nothing of the parent's shows through it.
func checkRecreatedDirectory(t *testing.T, s Snapshotter) {
	step(t, s, "base", nil, func(root string) {
		write(t, filepath.Join(root, "dir/old"), "old")
	})
	step(t, s, "top", []string{"base"}, func(root string) {
		// Let the clock move past the copy, as a real RUN would: the copy
		// snapshotter tells a new directory by its birth time.
		time.Sleep(20 * time.Millisecond)
		must(t, os.RemoveAll(filepath.Join(root, "dir")))
		write(t, filepath.Join(root, "dir/new"), "new")
	})
	if got, want := layerNames(t, s, "top"), []string{"dir/", "dir/.wh..wh..opq", "dir/new"}; !slices.Equal(got, want) {
		t.Errorf("layer of top = %q, want %q", got, want)
	}
	if got, want := view(t, s, "top", "base"), []string{". d---------", "dir d---------", "dir/new ----------=new"}; !slices.Equal(got, want) {
		t.Errorf("View(top, base) = %q, want %q", got, want)
	}
}

// checkTransitivity: three layers, each replacing a file of the one below;
// the top-most wins everywhere.
func checkTransitivity(t *testing.T, s Snapshotter) {
	var parents []string
	for i, id := range []string{"l1", "l2", "l3"} {
		step(t, s, id, parents, func(root string) {
			write(t, filepath.Join(root, "f"), id)
			write(t, filepath.Join(root, id), id)
		})
		parents = append([]string{id}, parents...)
		if got := view(t, s, parents...); len(got) != i+3 || got[1] != "f ----------="+id {
			t.Errorf("View(%v) = %q, want f from %s and one file per layer", parents, got, id)
		}
	}
}

func checkViewIsReadOnly(t *testing.T, s Snapshotter) {
	step(t, s, "base", nil, func(root string) { write(t, filepath.Join(root, "f"), "f") })
	err := s.WithMounts(t.Context(), [][]Mount{s.View([]string{"base"}), s.View(nil)}, func(roots []string) error {
		if err := os.WriteFile(filepath.Join(roots[0], "g"), nil, 0o644); !errors.Is(err, unix.EROFS) {
			t.Errorf("writing into View(base) = %v, want EROFS", err)
		}
		if err := os.WriteFile(filepath.Join(roots[1], "g"), nil, 0o644); !errors.Is(err, unix.EROFS) {
			t.Errorf("writing into View() = %v, want EROFS", err)
		}
		if names, _ := dirNames(roots[1]); len(names) != 0 {
			t.Errorf("View() holds %q, want nothing", names)
		}
		return nil
	})
	must(t, err)
	if got, want := view(t, s, "base"), []string{". d---------", "f ----------=f"}; !slices.Equal(got, want) {
		t.Errorf("View(base) after the attempted writes = %q, want %q", got, want)
	}
}

// checkRemoveIntermediate: removing snapshots top-down leaves the ones
// below usable, and an id can be prepared again after Remove.
func checkRemoveIntermediate(t *testing.T, s Snapshotter) {
	step(t, s, "base", nil, func(root string) { write(t, filepath.Join(root, "f"), "base") })
	step(t, s, "mid", []string{"base"}, func(root string) { write(t, filepath.Join(root, "g"), "mid") })
	step(t, s, "top", []string{"mid", "base"}, func(root string) { write(t, filepath.Join(root, "h"), "top") })
	must(t, s.Remove("top"))
	must(t, s.Remove("mid"))
	if s.Exists("top") || s.Exists("mid") || !s.Exists("base") {
		t.Errorf("Exists(top, mid, base) = %v, %v, %v; want false, false, true", s.Exists("top"), s.Exists("mid"), s.Exists("base"))
	}
	step(t, s, "mid", []string{"base"}, func(root string) { write(t, filepath.Join(root, "g"), "again") })
	if got, want := view(t, s, "mid", "base"), []string{". d---------", "f ----------=base", "g ----------=again"}; !slices.Equal(got, want) {
		t.Errorf("View(mid, base) = %q, want %q", got, want)
	}
}

// checkMetadata: owners, modes, times and xattrs written in a snapshot are
// what its layer holds.
func checkMetadata(t *testing.T, s Snapshotter) {
	mtime := time.Date(2022, 3, 4, 5, 6, 7, 0, time.UTC)
	step(t, s, "base", nil, func(root string) {
		p := filepath.Join(root, "f")
		write(t, p, "f")
		must(t, os.Lchown(p, 7, 8))
		must(t, unix.Chmod(p, 0o4750))
		must(t, unix.Lsetxattr(p, "user.k", []byte("v"), 0))
		must(t, unix.Lsetxattr(p, "security.capability", []byte(fileCap()), 0))
		must(t, os.Chtimes(p, mtime, mtime))
		must(t, os.Symlink("f", filepath.Join(root, "l")))
	})
	var buf bytes.Buffer
	must(t, WriteDiff(t.Context(), s.FS("base"), &buf, DiffOptions{}))
	es := readTar(t, buf.Bytes())
	if len(es) != 2 {
		t.Fatalf("layer of base = %+v, want f and l", es)
	}
	f, l := es[0], es[1]
	// Of the xattrs, a layer records only the capability (as BuildKit's).
	if f.UID != 7 || f.GID != 8 || f.Mode != 0o4750 || !f.ModTime.Equal(mtime) || !maps.Equal(f.Xattrs, map[string]string{"security.capability": fileCap()}) {
		t.Errorf("f = %+v, want 7:8, mode 04750, mtime %v and only security.capability", f, mtime)
	}
	if l.Linkname != "f" {
		t.Errorf("l = %+v, want a symlink to f", l)
	}
}
