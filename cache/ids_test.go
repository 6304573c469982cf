package cache

import (
	"path/filepath"
	"slices"
	"testing"
)

// Snapshot ids reserved in blocks stay unique across handles (processes)
// taking them in turn and across a reopen, and each is in the lease of
// the handle that took it.
func TestSnapshotIDsUnique(t *testing.T) {
	a, b := openTwo(t)
	seen := map[string]string{}
	take := func(who string, d *DB) {
		t.Helper()
		id, err := d.NewSnapshotID(t.Context())
		if err != nil {
			t.Fatal(err)
		}
		if prev, ok := seen[id]; ok {
			t.Fatalf("snapshot id %s handed out twice (%s, then %s)", id, prev, who)
		}
		seen[id] = who
	}
	for i := range 3 * idsPerWrite {
		take("a", a)
		if i%3 == 0 {
			take("b", b)
		}
	}
	ls, err := b.Leases()
	if err != nil || len(ls) != 1 {
		t.Fatalf("b.Leases() = %v, %v; want a's", ls, err)
	}
	for id, who := range seen {
		if who == "a" && !slices.Contains(ls[0].Snapshots, id) {
			t.Errorf("a's id %s is not in its lease", id)
		}
	}
	p := a.path
	a.Close()
	c, err := Open(filepath.Join(filepath.Dir(p), filepath.Base(p)), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for range idsPerWrite + 1 {
		take("c", c)
	}
}
