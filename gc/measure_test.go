package gc

import (
	"errors"
	"strings"
	"testing"

	"github.com/builder-dev/builder/snapshot"
)

// failUsage is a snapshotter that cannot measure one snapshot.
type failUsage struct {
	snapshot.Snapshotter
	bad string
}

func (f failUsage) Usage(id string) (int64, error) {
	if id == f.bad {
		return 0, errors.New("usage of snapshot " + id + ": too many open files")
	}
	return f.Snapshotter.Usage(id)
}

// TestUnmeasurableSnapshotDoesNotWedgeGC: a layer that cannot be measured
// counts 0 with a warning; du and prune still work, its record stays
// unmeasured (measured again later), and a prune can remove it.
func TestUnmeasurableSnapshotDoesNotWedgeGC(t *testing.T) {
	c := openCollector(t, t.TempDir())
	ka, kb := addResult(t, c, "a"), addResult(t, c, "b")
	ks := keys(t, c.DB)
	bad, good := ks[ka].Snapshot, ks[kb].Snapshot
	c.Snapshots = failUsage{c.Snapshots, bad}
	var warns []string
	c.Warn = func(w string) { warns = append(warns, w) }

	if _, err := c.DiskUsage(t.Context()); err != nil {
		t.Fatalf("DiskUsage: %v", err)
	}
	if _, err := c.Prune(t.Context(), PruneOptions{KeepStorage: 1 << 40}); err != nil {
		t.Fatalf("Prune keeping everything: %v", err)
	}
	if len(warns) == 0 || !strings.Contains(warns[0], bad) {
		t.Errorf("warnings %q, want one naming snapshot %s", warns, bad)
	}
	if s, _ := c.DB.Snapshot(bad); s.Measured {
		t.Errorf("the unmeasurable snapshot's record is stored as measured: %+v", s)
	}
	if s, _ := c.DB.Snapshot(good); !s.Measured {
		t.Errorf("the other snapshot's size is not stored: %+v", s)
	}
	rep, err := c.Prune(t.Context(), PruneOptions{All: true})
	if err != nil || rep.Snapshots != 2 {
		t.Fatalf("Prune all = %+v, %v; want both snapshots removed", rep, err)
	}
	if c.Snapshots.Exists(bad) {
		t.Error("the unmeasurable snapshot's directory is left")
	}
}
