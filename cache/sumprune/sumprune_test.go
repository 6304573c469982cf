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
	kept, again := Bound(map[string]*Root{"old": old, "mid": mid, "new": recent, "gone": gone}, orphans, 20)
	if kept != 20 || !again || !orphans.Drop || !old.Drop || mid.Drop || recent.Drop {
		t.Errorf("Bound = %d, %v; dropped orphans %v old %v mid %v new %v; want 20, true, and orphans and old dropped", kept, again, orphans.Drop, old.Drop, mid.Drop, recent.Drop)
	}
	if kept, again := Bound(map[string]*Root{"new": {Files: 5}}, &Root{}, 20); kept != 5 || again {
		t.Errorf("under the bound: Bound = %d, %v, want 5, false", kept, again)
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
