package gc

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/builder-dev/builder/cache/coord"
)

// builder serve's project directories are collected least recently used
// first, by the automatic GC and by prune, never while a build uses one.
func TestPruneProjects(t *testing.T) {
	root := t.TempDir()
	c := openCollector(t, root)
	dir := func(name string) string { return filepath.Join(root, "serve", "projects", name) }
	use := func(name string, ago time.Duration) *coord.DirUse {
		os.MkdirAll(dir(name), 0o700)
		os.WriteFile(filepath.Join(dir(name), "f"), []byte("x"), 0o600)
		u, ok, err := coord.TryUseDir(dir(name))
		if err != nil || !ok {
			t.Fatalf("claiming %s: %v, %v", name, ok, err)
		}
		if ago == 0 {
			return u
		}
		if _, err := u.Release(100); err != nil {
			t.Fatal(err)
		}
		at := time.Now().Add(-ago)
		os.Chtimes(dir(name)+".use", at, at)
		return nil
	}
	use("busy", 3*time.Hour)
	busy := use("busy", 0) // used since long ago, and now
	use("old", 2*time.Hour)
	use("recent", time.Minute)
	left := func() (names []string) {
		for _, n := range []string{"busy", "old", "recent"} {
			if _, err := os.Stat(dir(n)); err == nil {
				names = append(names, n)
			}
		}
		return names
	}

	du, err := c.DiskUsage(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	var n int
	for _, r := range du.Records {
		if r.Description == "builder serve project context" && r.Size == 100 {
			n++
		}
	}
	if n != 3 || du.Reclaimable < 300 {
		t.Errorf("du lists %d project contexts of 100 bytes and %d reclaimable bytes, want 3 and at least 300", n, du.Reclaimable)
	}

	if ran, err := c.autoGC(t.Context(), &Policy{KeepStorage: 250}); err != nil || !ran {
		t.Fatalf("autoGC over the limit = %v, %v", ran, err)
	}
	if got := left(); len(got) != 2 || got[0] != "busy" || got[1] != "recent" {
		t.Errorf("after the automatic GC to 250 of 300 bytes the projects left are %v, want busy (in use) and recent", got)
	}
	if _, err := c.Prune(t.Context(), PruneOptions{Until: time.Hour}); err != nil {
		t.Fatal(err)
	}
	if got := left(); len(got) != 2 {
		t.Errorf("prune --filter until=1h left %v, want busy and recent", got)
	}
	rep, err := c.Prune(t.Context(), PruneOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if got := left(); len(got) != 1 || got[0] != "busy" || rep.Projects != 1 {
		t.Errorf("prune left %v and reports %d projects, want only busy (in use) left and 1 removed", got, rep.Projects)
	}
	busy.Release(100)
	if _, err := c.Prune(t.Context(), PruneOptions{}); err != nil {
		t.Fatal(err)
	}
	if got := left(); len(got) != 0 {
		t.Errorf("prune left %v once no build used them", got)
	}
}
