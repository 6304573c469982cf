package ops

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"os/exec"
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

// hangingSync is a Snapshotter whose Sync says so on stdout and never
// returns: a process killed then dies between commit and flush.
type hangingSync struct{ snapshot.Snapshotter }

func (h hangingSync) OpenSync() (snapshot.Syncer, error) { return h, nil }

func (h hangingSync) Close() error { return nil }

func (h hangingSync) Sync() error {
	fmt.Println("flushing")
	select {}
}

// killHelperEnv makes TestKilledBeforeFlush's binary the build it kills.
const killHelperEnv = "OPS_TEST_KILL_HELPER"

// TestKilledBeforeFlush kills (SIGKILL) a build whose steps committed
// their layers while the flush that would make them durable runs: the
// state it leaves has no record naming a layer, so the next build trusts
// nothing a crash could have lost, and runs the steps again.
func TestKilledBeforeFlush(t *testing.T) {
	testutil.RequiresHostRoot(t)
	if dir := os.Getenv(killHelperEnv); dir != "" {
		db, snaps := openStores(t, dir)
		w := &Worker{DB: db, Snapshots: hangingSync{snaps}, TmpDir: filepath.Join(dir, "tmp")}
		_, err := solver.New(w.Op, w, nil, 1).Solve(t.Context(), mkdirs())
		t.Fatalf("Solve returned (%v) with its flush hanging", err)
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKilledBeforeFlush$", "-test.count=1")
	cmd.Env = append(os.Environ(), killHelperEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	cmd.Process.Kill()
	cmd.Wait()
	if line != "flushing\n" {
		t.Fatalf("the build printed %q, want it to reach its flush", line)
	}
	db, snaps := openStores(t, dir)
	keys, err := db.Keys()
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) != 0 {
		t.Errorf("killed before its flush, the build left %d keys, want none", len(keys))
	}
	recs, err := db.Snapshots()
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range recs {
		t.Errorf("killed before its flush, the build left the record of snapshot %s (%s)", s.ID, s.Description)
	}
	// The next build runs the steps again and records them.
	w := &Worker{DB: db, Snapshots: snaps, TmpDir: filepath.Join(dir, "tmp")}
	if _, err := solver.New(w.Op, w, nil, 1).Solve(t.Context(), mkdirs()); err != nil {
		t.Fatal(err)
	}
	if keys, err := db.Keys(); err != nil || len(keys) == 0 {
		t.Errorf("after the next build: %d keys, %v; want its steps recorded", len(keys), err)
	}
}

func openStores(t *testing.T, dir string) (*cache.DB, snapshot.Snapshotter) {
	t.Helper()
	db, err := cache.Open(filepath.Join(dir, "meta.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	snaps, err := snapshot.NewSnapshotter(filepath.Join(dir, "snapshots"), snapshot.WithCopy(true))
	if err != nil {
		t.Fatal(err)
	}
	return db, snaps
}

// mkdirs is two steps, /a then /a/b.
func mkdirs() *llb.Vertex {
	a := llb.NewVertex(llb.MkdirOp{Path: "/a", Mode: 0o755}, []*llb.Vertex{nil}, llb.Meta{Name: "mkdir /a"})
	return llb.NewVertex(llb.MkdirOp{Path: "/a/b", Mode: 0o755}, []*llb.Vertex{a}, llb.Meta{Name: "mkdir /a/b"})
}
