package sumprune

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestOwners: a directory's records belong to the nearest root above it,
// nested roots included; records under no root are orphans.
func TestOwners(t *testing.T) {
	a, ab, orphans := &Root{}, &Root{}, &Root{}
	owner := Owners(map[string]*Root{"/ci/a": a, "/ci/a/b": ab}, orphans)
	for _, tt := range []struct {
		dir  string
		want *Root
	}{
		{"/ci/a", a}, {"/ci/a/src", a}, {"/ci/a/b", ab}, {"/ci/a/b/c/d", ab},
		{"/ci/ab", orphans}, {"/ci", orphans}, {"/", orphans}, {"rel/a", orphans},
	} {
		if got := owner(tt.dir); got != tt.want {
			t.Errorf("owner(%q) = %p, want %p", tt.dir, got, tt.want)
		}
	}
}

// TestBound: orphans go first, then roots by last use, until the rest fits.
func TestBound(t *testing.T) {
	now := time.Now()
	old := &Root{Used: now.Add(-2 * time.Hour), Files: 5, Trees: 5}
	mid := &Root{Used: now.Add(-time.Hour), Trees: 10}
	recent := &Root{Used: now, Files: 5, Trees: 5}
	gone := &Root{Files: 100, Drop: true}
	orphans := &Root{Files: 3}
	kept, again := Bound(map[string]*Root{"old": old, "mid": mid, "new": recent, "gone": gone}, orphans, 20, now)
	if kept != 20 || !again || !orphans.Drop || !old.Drop || mid.Drop || recent.Drop {
		t.Errorf("Bound = %d, %v; dropped orphans %v old %v mid %v new %v; want 20, true, and orphans and old dropped", kept, again, orphans.Drop, old.Drop, mid.Drop, recent.Drop)
	}
	if kept, again := Bound(map[string]*Root{"new": {Files: 5}}, &Root{}, 20, now); kept != 5 || again {
		t.Errorf("under the bound: Bound = %d, %v, want 5, false", kept, again)
	}
}

// TestBoundKeepsRecent: the root used last stays even when it alone is
// over the bound, and so do roots used within the last hour; older ones
// go.
func TestBoundKeepsRecent(t *testing.T) {
	now := time.Now()
	big := &Root{Used: now.Add(-3 * time.Hour), Files: 50, Trees: 50}
	older := &Root{Used: now.Add(-4 * time.Hour), Files: 5}
	kept, again := Bound(map[string]*Root{"big": big, "older": older}, &Root{}, 20, now)
	if kept != 100 || !again || big.Drop || !older.Drop {
		t.Errorf("Bound = %d, %v; dropped big %v older %v; want 100, true, only older dropped", kept, again, big.Drop, older.Drop)
	}
	a := &Root{Used: now.Add(-50 * time.Minute), Files: 30}
	b := &Root{Used: now.Add(-10 * time.Minute), Files: 30}
	stale := &Root{Used: now.Add(-2 * time.Hour), Files: 30}
	kept, _ = Bound(map[string]*Root{"a": a, "b": b, "stale": stale}, &Root{Files: 1}, 20, now)
	if kept != 60 || a.Drop || b.Drop || !stale.Drop {
		t.Errorf("Bound = %d; dropped a %v b %v stale %v; want 60, only stale dropped", kept, a.Drop, b.Drop, stale.Drop)
	}
}

// TestFilesCurrent: a record is current while its file is there with the
// key it had; a removed file or directory makes it stale.
func TestFilesCurrent(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "sub", "f")
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	k, err := Stat(p)
	if err != nil {
		t.Fatal(err)
	}
	same := func(got Key) bool { return got == k }
	files := NewFiles()
	if !files.Current(p, same) || files.Current(p, func(Key) bool { return false }) {
		t.Error("Current does not follow matches for a file that is there")
	}
	if files.Current(filepath.Join(p, "below-a-file"), func(Key) bool { return true }) {
		t.Error("Current holds for a path below a file (ENOTDIR)")
	}
	if err := os.RemoveAll(filepath.Dir(p)); err != nil {
		t.Fatal(err)
	}
	if NewFiles().Current(p, same) {
		t.Error("Current holds for a file whose directory is gone")
	}
	if !NewFiles().DirGone(filepath.Join(dir, "sub", "x", "y")) || NewFiles().DirGone(dir) {
		t.Error("DirGone is wrong")
	}
}
