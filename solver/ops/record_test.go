package ops

import (
	"errors"
	"path/filepath"
	"testing"

	"github.com/builder-dev/builder/cache"
	"github.com/builder-dev/builder/internal/testutil"
	"github.com/builder-dev/builder/llb"
	"github.com/builder-dev/builder/snapshot"
	"github.com/builder-dev/builder/solver"
)

// TestStepIsOneMetadataWrite runs steps that miss the cache: each must
// store its snapshot's record and its keys in one write transaction (two
// fsyncs), and every key must name a recorded snapshot.
func TestStepIsOneMetadataWrite(t *testing.T) {
	testutil.RequiresHostRoot(t)
	dir := t.TempDir()
	db, err := cache.Open(filepath.Join(dir, "meta.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	snaps, err := snapshot.NewSnapshotter(filepath.Join(dir, "snapshots"), snapshot.WithCopy(true))
	if err != nil {
		t.Fatal(err)
	}
	w := &Worker{DB: db, Snapshots: snaps, TmpDir: filepath.Join(dir, "tmp")}
	// Reserves a block of ids, so that the steps below write none.
	if _, err := db.NewSnapshotID(t.Context()); err != nil {
		t.Fatal(err)
	}
	a := llb.NewVertex(llb.MkdirOp{Path: "/a", Mode: 0o755}, []*llb.Vertex{nil}, llb.Meta{Name: "mkdir /a"})
	b := llb.NewVertex(llb.MkdirOp{Path: "/a/b", Mode: 0o755}, []*llb.Vertex{a}, llb.Meta{Name: "mkdir /a/b"})
	before := db.Writes()
	r, err := solver.New(w.Op, w, nil, 1).Solve(t.Context(), b)
	if err != nil {
		t.Fatal(err)
	}
	// The second step's record may share the first's transaction.
	if n := db.Writes() - before; n < 1 || n > 2 {
		t.Errorf("2 steps that missed the cache made %d metadata write transactions, want 1 or 2 (at most one each)", n)
	}
	keys, err := db.Keys()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) == 0 {
		t.Fatal("no key recorded")
	}
	for k, res := range keys {
		if _, err := db.Chain(res.Snapshot); err != nil {
			t.Errorf("key %s names snapshot %s without a complete record: %v", k, res.Snapshot, err)
		}
	}
	if _, err := db.Snapshot(r.Snapshot); errors.Is(err, cache.ErrNotFound) {
		t.Errorf("the result's snapshot %s has no record", r.Snapshot)
	}
	if n := w.recs().Pending(); n != 0 {
		t.Errorf("%d snapshot records left unwritten", n)
	}
}

// TestFailedRecordDropsTheSnapshot: when a step's result cannot be
// recorded, the Worker forgets the snapshot and removes its layer.
func TestFailedRecordDropsTheSnapshot(t *testing.T) {
	dir := t.TempDir()
	db, err := cache.Open(filepath.Join(dir, "meta.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	snaps, err := snapshot.NewSnapshotter(filepath.Join(dir, "snapshots"), snapshot.WithCopy(true))
	if err != nil {
		t.Fatal(err)
	}
	const id = "7"
	if err := snaps.Prepare(id); err != nil {
		t.Fatal(err)
	}
	w := &Worker{DB: db, Snapshots: snaps}
	w.recs().Committed(cache.Snapshot{ID: id})
	db.Close() // RecordSteps fails on a closed database
	if err := w.Record(t.Context(), solver.Result{Snapshot: id}, llb.DigestStrings("key")); err == nil {
		t.Fatal("Record on a closed database succeeded")
	}
	if w.recs().Pending() != 0 {
		t.Errorf("the failed record stays in the Worker")
	}
	if snaps.Exists(id) {
		t.Errorf("the unrecorded snapshot's layer stays on disk")
	}
}
