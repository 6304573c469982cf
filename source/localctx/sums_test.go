package localctx

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/builder-dev/builder/cache"
	"github.com/moby/patternmatcher"
)

func TestSettled(t *testing.T) {
	walked := time.Unix(1_800_000_000, 500_000_000)
	at := func(d time.Duration) int64 { return walked.Add(-d).UnixNano() }
	whole := func(d time.Duration) int64 { return walked.Add(-d).Truncate(time.Second).UnixNano() }
	tests := []struct {
		name         string
		mtime, ctime int64
		want         bool
	}{
		{"changed 1 s before the walk", at(time.Hour), at(time.Second), true},
		{"changed 150 ms before", at(time.Hour), at(150 * time.Millisecond), true},
		{"changed 50 ms before", at(time.Hour), at(50 * time.Millisecond), false},
		{"changed after the walk started", at(time.Hour), at(-time.Millisecond), false},
		{"mtime in the future", at(-time.Hour), at(time.Hour), false},
		// Whole-second times: a coarse file system, 2 s of margin.
		{"whole seconds, 1.5 s before", whole(time.Hour), whole(1500 * time.Millisecond), false},
		{"whole seconds, 3 s before", whole(time.Hour), whole(3 * time.Second), true},
	}
	for _, tt := range tests {
		if got := settled(FileKey{Size: 1, MtimeNs: tt.mtime, CtimeNs: tt.ctime}, walked, fineSettle); got != tt.want {
			t.Errorf("%s: settled = %v, want %v", tt.name, got, tt.want)
		}
	}
}

// settle waits until files written now count as settled.
func settle() { time.Sleep(fineSettle + 50*time.Millisecond) }

// TestChecksumTreeRecord: an unchanged tree's digests come from its one
// record, not a lookup per file; any change a file's key or the listing
// shows (an edit keeping size and mtime, a new file, a rename, a chmod, a
// symlink's new target) makes the walk look again file by file and gives
// the checksum a plain tree gives.
func TestChecksumTreeRecord(t *testing.T) {
	dir := makeTree(t, map[string]string{"a": "aaaa", "sub/b": "bbbb", "sub/c": "cccc"})
	os.Symlink("a", filepath.Join(dir, "link"))
	old := time.Now().Add(-time.Hour)
	settle()
	sums := newMemSums()
	tree, _ := NewTree(dir, nil)
	tree.Sums = sums
	plainSum := func() string { return plainChecksum(t, dir) }
	check := func(step string, wantTreeHit bool) {
		t.Helper()
		sums.lookups, sums.treeHits, sums.treesStored = 0, 0, 0
		got, err := tree.Checksum(".", nil)
		if err != nil {
			t.Fatal(err)
		}
		if want := plainSum(); got != want {
			t.Errorf("%s: checksum %s, want %s (as without the sum cache)", step, got, want)
		}
		if hit := sums.lookups == 0; hit != wantTreeHit {
			t.Errorf("%s: from the tree record = %v (per-file lookups %d), want %v", step, hit, sums.lookups, wantTreeHit)
		}
	}
	check("first walk", false)
	if sums.treesStored != 1 {
		t.Fatalf("first walk of settled files stored %d tree records, want 1", sums.treesStored)
	}
	check("unchanged", true)

	steps := []struct {
		name string
		// file: a regular file changed, so no record is kept until it
		// settles.
		file   bool
		change func()
	}{
		{"edit keeping size and mtime", true, func() {
			os.WriteFile(filepath.Join(dir, "sub/b"), []byte("BBBB"), 0o644)
			os.Chtimes(filepath.Join(dir, "sub/b"), old, old)
		}},
		{"touch", true, func() { os.Chtimes(filepath.Join(dir, "a"), old, time.Now()) }},
		{"new file", true, func() { os.WriteFile(filepath.Join(dir, "sub/d"), []byte("dddd"), 0o644) }},
		{"chmod", true, func() { os.Chmod(filepath.Join(dir, "a"), 0o600) }},
		{"rename", false, func() { os.Rename(filepath.Join(dir, "sub/c"), filepath.Join(dir, "sub/e")) }},
		{"symlink target", false, func() {
			os.Remove(filepath.Join(dir, "link"))
			os.Symlink("sub/b", filepath.Join(dir, "link"))
		}},
		{"removed file", false, func() { os.Remove(filepath.Join(dir, "sub/d")) }},
	}
	for _, s := range steps {
		s.change()
		// Right after the change: looked at file by file...
		check(s.name, false)
		if s.file && sums.treesStored != 0 {
			t.Errorf("%s: a tree record was stored with a file just changed", s.name)
		}
		// ...then a record is kept once every file has settled, and
		// serves the next walk.
		settle()
		tree.Checksum(".", nil)
		check(s.name+", settled", true)
	}
}

// TestTreeRecordPerFilter: COPYs of one directory with different
// .dockerignore or --exclude patterns keep a record each, so they do not
// replace each other's on every build.
func TestTreeRecordPerFilter(t *testing.T) {
	dir := makeTree(t, map[string]string{"a.txt": "a", "b.md": "b"})
	settle()
	sums := newMemSums()
	plain, _ := NewTree(dir, nil)
	plain.Sums = sums
	ignoring, _ := NewTree(dir, []string{"*.md"})
	ignoring.Sums = sums
	md, _ := patternmatcher.New([]string{"*.md"})
	for range 2 {
		plain.Checksum(".", nil)
		plain.Checksum(".", md)
		ignoring.Checksum(".", nil)
	}
	if len(sums.trees) != 3 || sums.treesStored != 3 {
		t.Errorf("%d tree records, stored %d times; want 3 and 3", len(sums.trees), sums.treesStored)
	}
}

// TestChecksumTreeRecordStateDir runs the tree record through the state
// directory's database: a rebuild of an unchanged tree writes nothing, and
// an edit that keeps size and mtime is still seen.
func TestChecksumTreeRecordStateDir(t *testing.T) {
	dir := makeTree(t, map[string]string{"a": "aaaa", "b": "bbbb"})
	settle()
	db, err := cache.Open(filepath.Join(t.TempDir(), "meta.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	tree, _ := NewTree(dir, nil)
	tree.Sums = db.FileSums()
	first, err := tree.Checksum(".", nil)
	if err != nil {
		t.Fatal(err)
	}
	rec, ok := db.FileSums().LookupTree(tree.treeID(".", nil))
	if !ok || len(rec.Sums) != 2 || rec.Sums[0] != mustHash(t, filepath.Join(dir, "a")) {
		t.Fatalf("tree record after the first walk: %v, %v; want the 2 files' digests", rec.Sums, ok)
	}
	if again, _ := tree.Checksum(".", nil); again != first {
		t.Fatal("checksum of an unchanged tree changed")
	}
	fi, _ := os.Stat(filepath.Join(dir, "a"))
	os.WriteFile(filepath.Join(dir, "a"), []byte("AAAA"), 0o644)
	os.Chtimes(filepath.Join(dir, "a"), fi.ModTime(), fi.ModTime())
	if after, _ := tree.Checksum(".", nil); after == first {
		t.Fatal("an edit keeping size and mtime went unseen")
	}
}

// TestTreeIDExclusion: a pattern and its exception ("!foo") select
// different files, so they name different tree records.
func TestTreeIDExclusion(t *testing.T) {
	dir := t.TempDir()
	ids := map[string]bool{}
	for _, pats := range [][]string{{"*", "foo"}, {"*", "!foo"}} {
		tree, err := NewTree(dir, pats)
		if err != nil {
			t.Fatal(err)
		}
		ids[string(tree.treeID(".", nil))] = true
	}
	if len(ids) != 2 {
		t.Errorf("foo and !foo give the same tree id")
	}
}

// plainChecksum is the checksum of dir by a tree without a sum cache.
func plainChecksum(t *testing.T, dir string) string {
	t.Helper()
	plain, _ := NewTree(dir, nil)
	s, err := plain.Checksum(".", nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}
