package cache

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/builder-dev/builder/cache/sumprune"
	bolt "go.etcd.io/bbolt"
)

func TestFileSumsLookup(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "meta.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fs := db.FileSums()
	k := func(n int64) FileKey { return FileKey{Size: n, MtimeNs: n * 10, CtimeNs: n * 100, Ino: uint64(n)} }
	fs.Store([]string{"/c/a", "/c/b", "/c/d"}, []FileKey{k(1), k(2), k(4)}, [][32]byte{{1}, {2}, {4}}, nil)

	tests := []struct {
		paths []string
		keys  []FileKey
		want  []bool
	}{
		{[]string{"/c/a", "/c/b", "/c/d"}, []FileKey{k(1), k(2), k(4)}, []bool{true, true, true}},
		{[]string{"/c/d", "/c/a"}, []FileKey{k(4), k(1)}, []bool{true, true}},
		{[]string{"/c/a", "/c/c", "/c/d", "/c/e"}, []FileKey{k(1), k(3), k(5), k(5)}, []bool{true, false, false, false}},
		{[]string{"/a", "/z"}, []FileKey{k(1), k(1)}, []bool{false, false}},
	}
	for _, tt := range tests {
		var paths [][]byte
		for _, p := range tt.paths {
			paths = append(paths, []byte(p))
		}
		sums, ok := fs.Lookup(paths, tt.keys)
		for i := range tt.paths {
			if ok[i] != tt.want[i] || (ok[i] && sums[i][0] != byte(tt.keys[i].Size)) {
				t.Errorf("Lookup(%v)[%d] = %v %v, want found=%v", tt.paths, i, sums[i][0], ok[i], tt.want[i])
			}
		}
	}
}

// TestDropGoneTrees: the tree records of removed roots go, those of roots
// still there stay.
func TestDropGoneTrees(t *testing.T) {
	dir := t.TempDir()
	db, err := Open(filepath.Join(dir, "meta.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	fs := db.FileSums()
	kept, gone := filepath.Join(dir, "kept"), filepath.Join(dir, "gone")
	ids := [][]byte{treeID(kept, "."), treeID(kept, "sub"), treeID(gone, "."), treeID(gone+"2", ".")}
	if err := os.Mkdir(kept, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, i := range ids {
		fs.Store(nil, nil, nil, &TreeSums{ID: i, Sums: [][32]byte{{1}}})
	}
	pruned, err := fs.Prune(FileSumsPolicy{})
	if err != nil {
		t.Fatal(err)
	}
	if pruned.Trees != 2 {
		t.Errorf("Prune removed %d tree records, want 2", pruned.Trees)
	}
	for i, want := range []bool{true, true, false, false} {
		if _, ok := fs.LookupTree(ids[i]); ok != want {
			t.Errorf("record %q present = %v, want %v", ids[i], ok, want)
		}
	}
}

func treeID(root, rel string) []byte {
	return []byte(root + "\x00" + rel + "\x00" + "0123456789abcdef0123456789abcdef")
}

// openSums opens a database in a temporary directory.
func openSums(t *testing.T) (*DB, FileSums) {
	t.Helper()
	db, err := Open(filepath.Join(t.TempDir(), "meta.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db, db.FileSums()
}

// writeFiles makes files under dir and returns their paths and keys.
func writeFiles(t *testing.T, dir string, names ...string) ([]string, []FileKey) {
	t.Helper()
	var paths []string
	var keys []FileKey
	for _, n := range names {
		p := filepath.Join(dir, n)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(n), 0o644); err != nil {
			t.Fatal(err)
		}
		k, err := sumprune.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		paths, keys = append(paths, p), append(keys, FileKey(k))
	}
	return paths, keys
}

// TestFileSumsPruneStale: Prune removes the per-file records that can no
// longer match (file removed, directory removed, file changed; with
// DirsOnly those of the removed directory only) and keeps the others,
// which still answer lookups.
func TestFileSumsPruneStale(t *testing.T) {
	_, fs := openSums(t)
	ctx := t.TempDir()
	paths, keys := writeFiles(t, ctx, "same", "edited", "removed", "sub/gone/a", "sub/gone/b", "sub/kept")
	fs.Store(paths, keys, make([][32]byte, len(paths)), &TreeSums{ID: treeID(ctx, "."), Sums: make([][32]byte, len(paths))})
	if err := os.WriteFile(paths[1], []byte("edited, same size?"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(paths[2]); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(filepath.Join(ctx, "sub/gone")); err != nil {
		t.Fatal(err)
	}
	// Directories only: the records of the removed directory go.
	pruned, err := fs.Prune(FileSumsPolicy{DirsOnly: true})
	if err != nil {
		t.Fatal(err)
	}
	if pruned.Files != 2 || pruned.Trees != 0 {
		t.Errorf("Prune (directories only) removed %d file and %d tree records, want 2 and 0", pruned.Files, pruned.Trees)
	}
	pruned, err = fs.Prune(FileSumsPolicy{})
	if err != nil {
		t.Fatal(err)
	}
	if pruned.Files != 2 || pruned.Trees != 0 {
		t.Errorf("Prune removed %d file and %d tree records, want 2 (the edited and the removed file) and 0", pruned.Files, pruned.Trees)
	}
	if files, trees, _ := fs.Count(); files != 2 || trees != 1 {
		t.Errorf("after Prune: %d file and %d tree records, want 2 and 1", files, trees)
	}
	for i, want := range []bool{true, false, false, false, false, true} {
		_, ok := fs.Lookup([][]byte{[]byte(paths[i])}, keys[i:i+1])
		if ok[0] != want {
			t.Errorf("after Prune, lookup of %s = %v, want %v", paths[i], ok[0], want)
		}
	}
}

// TestFileSumsPruneBound: over the bound, orphan records (under no tree
// record's root) go first, then the roots least recently used, with
// their tree records; roots unused for MaxAge go whatever the bound.
func TestFileSumsPruneBound(t *testing.T) {
	db, fs := openSums(t)
	base := t.TempDir()
	now := time.Now()
	roots := []string{"old", "mid", "new", "stale"}
	for i, r := range roots {
		dir := filepath.Join(base, r)
		paths, keys := writeFiles(t, dir, "a", "b", "c")
		fs.Store(paths, keys, make([][32]byte, 3), &TreeSums{ID: treeID(dir, "."), Sums: make([][32]byte, 3)})
		used := now.Add(-time.Duration(3-i) * time.Hour) // old 3 h ago, mid 2 h, new 1 h
		if r == "stale" {
			used = now.Add(-48 * time.Hour)
		}
		if err := db.update(func(tx *bolt.Tx) error { return touchRoot(tx, treeID(dir, "."), used) }); err != nil {
			t.Fatal(err)
		}
	}
	paths, keys := writeFiles(t, filepath.Join(base, "orphans"), "x", "y")
	fs.Store(paths, keys, make([][32]byte, 2), nil)

	// 3 roots kept of 6 digests each, and 2 orphans: 20 digests. A bound
	// of 12 keeps the two roots used last.
	pruned, err := fs.Prune(FileSumsPolicy{MaxDigests: 12, MaxAge: 24 * time.Hour, Now: now})
	if err != nil {
		t.Fatal(err)
	}
	if pruned.Files != 2+3+3 || pruned.Trees != 2 || pruned.Kept != 12 {
		t.Errorf("Prune = %+v, want 8 files and 2 trees removed, 12 digests kept", pruned)
	}
	for _, r := range roots {
		dir := filepath.Join(base, r)
		_, ok := fs.LookupTree(treeID(dir, "."))
		p, k := writeFilesKeys(t, dir, "a")
		_, fok := fs.Lookup(p, k)
		want := r == "new" || r == "mid"
		if ok != want || fok[0] != want {
			t.Errorf("root %s: tree record kept %v, file record kept %v, want %v", r, ok, fok[0], want)
		}
	}
	if _, n, _ := db.GCCounts(); n != 0 {
		t.Errorf("after Prune, %d digests counted as added, want 0", n)
	}
}

// writeFilesKeys returns the lookup keys of existing files under dir.
func writeFilesKeys(t *testing.T, dir string, names ...string) ([][]byte, []FileKey) {
	t.Helper()
	var paths [][]byte
	var keys []FileKey
	for _, n := range names {
		p := filepath.Join(dir, n)
		k, err := sumprune.Stat(p)
		if err != nil {
			t.Fatal(err)
		}
		paths, keys = append(paths, []byte(p)), append(keys, FileKey(k))
	}
	return paths, keys
}

// TestFileSumsPruneKeepsRewritten: a record that a build stores again
// while Prune looks at its file (outside any transaction) is kept.
func TestFileSumsPruneKeepsRewritten(t *testing.T) {
	_, fs := openSums(t)
	dir := t.TempDir()
	paths, keys := writeFiles(t, dir, "f")
	old := keys[0]
	old.Size++ // a record of the file before an edit: stale
	fs.Store(paths, []FileKey{old}, [][32]byte{{1}}, nil)
	removed, err := fs.scanFiles(func(path string, v []byte) bool {
		// A build reads the file again meanwhile.
		fs.Store(paths, keys, [][32]byte{{2}}, nil)
		return false
	})
	if err != nil {
		t.Fatal(err)
	}
	sums, ok := fs.Lookup([][]byte{[]byte(paths[0])}, keys)
	if removed != 0 || !ok[0] || sums[0][0] != 2 {
		t.Errorf("scanFiles removed %d records; the record stored meanwhile is found %v (%d), want kept", removed, ok[0], sums[0][0])
	}
}

// TestLookupTreeTouchesRoot: a tree lookup notes its root's use only when
// the last note is older than RootTouchResolution, so a no-op rebuild
// writes nothing.
func TestLookupTreeTouchesRoot(t *testing.T) {
	db, fs := openSums(t)
	id := treeID(t.TempDir(), ".")
	fs.Store(nil, nil, nil, &TreeSums{ID: id, Sums: [][32]byte{{1}}})
	w := db.Writes()
	if _, ok := fs.LookupTree(id); !ok || db.Writes() != w {
		t.Errorf("a lookup right after the store: found %v, %d writes, want found and none", ok, db.Writes()-w)
	}
	day := time.Now().Add(-RootTouchResolution - time.Minute)
	if err := db.update(func(tx *bolt.Tx) error { return touchRoot(tx, id, day) }); err != nil {
		t.Fatal(err)
	}
	// A day later the note is written at once, not queued: a prune in
	// another process must see the root in use.
	w = db.Writes()
	if _, ok := fs.LookupTree(id); !ok || db.Writes() != w+1 || db.HintsPending() {
		t.Errorf("a lookup a day later: found %v, %d writes, pending %v; want found, 1, none", ok, db.Writes()-w, db.HintsPending())
	}
	roots, err := fs.readRoots()
	if err != nil {
		t.Fatal(err)
	}
	if r := roots[filepath.Clean(string(treeRoot(id)))]; r == nil || time.Since(r.Used) > time.Minute {
		t.Errorf("the root's use was not noted again: %+v", r)
	}
}
