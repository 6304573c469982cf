package durable

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/builder-dev/builder/cache"
	"github.com/builder-dev/builder/llb"
	"github.com/builder-dev/builder/snapshot"
)

// gatedSync is a Snapshotter whose Syncs wait for gate, count their
// calls and note which snapshots were committed when each began.
type gatedSync struct {
	snapshot.Snapshotter
	inner   snapshot.Syncer
	entered chan struct{}
	gate    chan error
	mu      sync.Mutex
	syncs   int
	commits []string
	seen    [][]string
}

func (g *gatedSync) CommitUnsynced(id string) error {
	err := g.Snapshotter.CommitUnsynced(id)
	g.mu.Lock()
	g.commits = append(g.commits, id)
	g.mu.Unlock()
	return err
}

func (g *gatedSync) OpenSync() (snapshot.Syncer, error) {
	var err error
	g.inner, err = g.Snapshotter.OpenSync()
	return g, err
}

func (g *gatedSync) Close() error { return g.inner.Close() }

func (g *gatedSync) Sync() error {
	g.mu.Lock()
	g.syncs++
	g.seen = append(g.seen, append([]string(nil), g.commits...))
	g.mu.Unlock()
	g.entered <- struct{}{}
	if err := <-g.gate; err != nil {
		return err
	}
	return g.inner.Sync()
}

func setup(t *testing.T) (*Records, *gatedSync, *cache.DB) {
	t.Helper()
	dir := t.TempDir()
	db, err := cache.Open(filepath.Join(dir, "meta.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	snaps, err := snapshot.NewSnapshotter(filepath.Join(dir, "snapshots"), snapshot.WithCopy(true))
	if err != nil {
		t.Fatal(err)
	}
	g := &gatedSync{Snapshotter: snaps, entered: make(chan struct{}), gate: make(chan error)}
	r := New(db, g)
	t.Cleanup(func() { r.Close() })
	return r, g, db
}

// commit makes snapshot id (a file in it) on parent and notes its record.
func commit(t *testing.T, r *Records, g *gatedSync, id, parent string) {
	t.Helper()
	if err := g.Prepare(id); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(g.UpperDir(id), id), []byte(id), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := g.CommitUnsynced(id); err != nil {
		t.Fatal(err)
	}
	r.Committed(cache.Snapshot{ID: id, Parent: parent})
}

func record(r *Records, id string) <-chan error {
	done := make(chan error, 1)
	go func() { done <- r.Record(cache.Result{Snapshot: id}, llb.DigestStrings("key", id)) }()
	return done
}

// waitQueued waits until n Records (steps with keys) are queued for the
// next flush.
func waitQueued(t *testing.T, r *Records, n int) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(time.Millisecond) {
		r.mu.Lock()
		q := 0
		if r.open != nil {
			for _, st := range r.open.steps {
				if len(st.Keys) > 0 {
					q++
				}
			}
		}
		r.mu.Unlock()
		if q == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d records queued after 10 s, want %d", q, n)
		}
	}
}

// recorded says whether id has a snapshot record and its key a result.
func recorded(t *testing.T, db *cache.DB, id string) (snap, key bool) {
	t.Helper()
	_, err := db.Snapshot(id)
	snap = err == nil
	_, err = db.Lookup(t.Context(), llb.DigestStrings("key", id))
	return snap, err == nil
}

// TestRecordOnlyAfterSync holds the flush of a committed layer: until it
// returns, no record names the layer (a crash then leaves nothing that a
// later build trusts), while a child step already starts on it (Chain);
// the records that arrive meanwhile share the next flush and transaction,
// which begins after their layers were committed.
func TestRecordOnlyAfterSync(t *testing.T) {
	r, g, db := setup(t)
	commit(t, r, g, "a", "")
	da := record(r, "a")
	<-g.entered // a's flush began
	if s, k := recorded(t, db, "a"); s || k {
		t.Fatalf("while its flush runs, a has a snapshot record %v, a key %v; want neither", s, k)
	}
	commit(t, r, g, "b", "a")
	commit(t, r, g, "c", "b")
	chain, err := r.Chain("c")
	if err != nil || len(chain) != 3 || chain[0].ID != "c" || chain[2].ID != "a" {
		t.Fatalf("Chain(c) before any record = %v, %v; want c, b, a", chain, err)
	}
	db1 := db.Writes()
	dbc := record(r, "b")
	dc := record(r, "c")
	waitQueued(t, r, 2)
	g.gate <- nil
	if err := <-da; err != nil {
		t.Fatal(err)
	}
	if s, k := recorded(t, db, "a"); !s || !k {
		t.Fatalf("after its flush, a has a snapshot record %v, a key %v; want both", s, k)
	}
	for _, id := range []string{"b", "c"} {
		if s, k := recorded(t, db, id); s || k {
			t.Fatalf("before its flush, %s has a snapshot record %v, a key %v; want neither", id, s, k)
		}
	}
	<-g.entered
	g.gate <- nil
	for _, d := range []<-chan error{dbc, dc} {
		if err := <-d; err != nil {
			t.Fatal(err)
		}
	}
	if g.syncs != 2 || db.Writes()-db1 != 2 {
		t.Errorf("3 records, the last 2 queued during the first flush: %d flushes, %d transactions; want 2 and 2", g.syncs, db.Writes()-db1)
	}
	if got := g.seen[1]; len(got) != 3 {
		t.Errorf("the second flush began with %v committed, want a, b and c", got)
	}
	if chain, err := db.Chain("c"); err != nil || len(chain) != 3 {
		t.Errorf("db.Chain(c) = %v, %v; want c, b, a recorded", chain, err)
	}
	if r.Pending() != 0 {
		t.Errorf("%d records pending after all were written", r.Pending())
	}
}

// TestFailedSyncRecordsNothing: a flush that fails (as a crash before it
// would) writes no record, removes the layers, and fails the steps above
// them too.
func TestFailedSyncRecordsNothing(t *testing.T) {
	r, g, db := setup(t)
	commit(t, r, g, "a", "")
	da := record(r, "a")
	<-g.entered
	commit(t, r, g, "b", "a")
	db2 := record(r, "b")
	waitQueued(t, r, 1)
	g.gate <- errors.New("disk gone")
	if err := <-da; err == nil {
		t.Fatal("Record(a) with a failed flush succeeded")
	}
	if err := <-db2; err == nil {
		t.Fatal("Record(b) on a's failed record succeeded")
	}
	for _, id := range []string{"a", "b"} {
		if s, k := recorded(t, db, id); s || k {
			t.Errorf("%s has a snapshot record %v, a key %v after the failed flush; want neither", id, s, k)
		}
		if g.Exists(id) {
			t.Errorf("%s's layer stays on disk without a record", id)
		}
	}
	if r.Pending() != 0 {
		t.Errorf("%d records pending after the failure", r.Pending())
	}
}

// TestFailedSyncIsSticky: once a flush failed, pages of any layer
// written before it may be lost, and a later syncfs need not say so (the
// kernel reports a writeback error once per descriptor): the records of
// those layers fail, even one committed after the failure, and their
// layers are removed. A layer whose writing began after the failure
// records (a server's later builds do not fail for good).
func TestFailedSyncIsSticky(t *testing.T) {
	r, g, db := setup(t)
	r.Writing("a")
	commit(t, r, g, "a", "")
	r.Writing("c")
	commit(t, r, g, "c", "") // committed before a's flush: pending
	r.Writing("d")           // its step writes it during a's flush
	da := record(r, "a")
	<-g.entered
	g.gate <- errors.New("writeback error")
	if err := <-da; err == nil {
		t.Fatal("Record(a) with a failed flush succeeded")
	}
	commit(t, r, g, "d", "")
	for _, id := range []string{"c", "d"} {
		done := record(r, id)
		var err error
		select {
		case err = <-done:
		case <-g.entered: // a flush that succeeds must not count
			g.gate <- nil
			err = <-done
		}
		if err == nil {
			t.Errorf("Record(%s) after a failed flush succeeded", id)
		}
		if s, k := recorded(t, db, id); s || k {
			t.Errorf("%s has a snapshot record %v, a key %v after a failed flush; want neither", id, s, k)
		}
		if g.Exists(id) {
			t.Errorf("%s's layer stays on disk without a record", id)
		}
	}
	r.Writing("e") // a later build's step
	commit(t, r, g, "e", "")
	de := record(r, "e")
	select {
	case <-g.entered:
		g.gate <- nil
	case <-time.After(10 * time.Second):
	}
	if err := <-de; err != nil {
		t.Errorf("Record(e), written after the failed flush: %v", err)
	}
	if s, k := recorded(t, db, "e"); !s || !k {
		t.Errorf("e has a snapshot record %v, a key %v; want both", s, k)
	}
}

// TestParentRecordedWithChild: a child's Record before its parent's
// writes the parent's snapshot record in the same transaction, so no
// record names a parent that a later failed flush removes.
func TestParentRecordedWithChild(t *testing.T) {
	r, g, db := setup(t)
	commit(t, r, g, "a", "")
	commit(t, r, g, "b", "a")
	db2 := record(r, "b")
	<-g.entered
	g.gate <- nil
	if err := <-db2; err != nil {
		t.Fatal(err)
	}
	if chain, err := db.Chain("b"); err != nil || len(chain) != 2 {
		t.Fatalf("db.Chain(b) after b's record = %v, %v; want b, a recorded", chain, err)
	}
	da := record(r, "a")
	select {
	case err := <-da:
		if err != nil {
			t.Fatal(err)
		}
	case <-g.entered:
		t.Fatal("a's keys, its snapshot recorded already, wait for a flush")
	}
	if s, k := recorded(t, db, "a"); !s || !k {
		t.Errorf("a has a snapshot record %v, a key %v; want both", s, k)
	}
	if r.Pending() != 0 {
		t.Errorf("%d records pending after all were written", r.Pending())
	}
}

// TestFailedRecordUnderRunningChild: a flush fails while a child step
// runs on the layer (Chain gave it out). The layer stays until Close, so
// the child is not pulled from under it; a step that starts on it then
// (Chain) and the child's Record fail naming the step whose record
// failed, not with a missing snapshot; a layer committed before the
// failure and never recorded, and one nothing used, leave no orphan.
func TestFailedRecordUnderRunningChild(t *testing.T) {
	r, g, db := setup(t)
	commitNamed(t, r, g, "a", "", "RUN make")
	commitNamed(t, r, g, "idle", "", "RUN idle") // its step never records it
	commitNamed(t, r, g, "used", "", "RUN used") // nor this one's, which a step uses
	da := record(r, "a")
	<-g.entered
	for _, id := range []string{"a", "used"} { // the children start
		if _, err := r.Chain(id); err != nil {
			t.Fatal(err)
		}
	}
	if err := g.Prepare("b", "a"); err != nil {
		t.Fatal(err)
	}
	g.gate <- errors.New("injected flush failure")
	if err := <-da; err == nil || !strings.Contains(err.Error(), `"RUN make"`) {
		t.Fatalf("Record(a) with a failed flush = %v, want an error naming step \"RUN make\"", err)
	}
	if !g.Exists("a") {
		t.Fatal("a's layer removed while a child step runs on it")
	}
	if g.Exists("idle") {
		t.Error("idle's layer, committed and never recorded, stays after the failed flush")
	}
	if !g.Exists("used") {
		t.Error("used's layer, never recorded, removed after the failed flush while a step runs on it")
	}
	for _, id := range []string{"a", "used"} {
		_, err := r.Chain(id)
		if err == nil || !strings.Contains(err.Error(), `"RUN make"`) || !strings.Contains(err.Error(), "injected flush failure") {
			t.Errorf("Chain(%s) after a's record failed = %v, want an error naming step \"RUN make\" and the cause", id, err)
		}
	}
	// The child ends: it commits and records.
	if err := os.WriteFile(filepath.Join(g.UpperDir("b"), "b"), []byte("b"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := g.CommitUnsynced("b"); err != nil {
		t.Fatal(err)
	}
	r.Committed(cache.Snapshot{ID: "b", Parent: "a", Description: "RUN test"})
	if err := <-record(r, "b"); err == nil || !strings.Contains(err.Error(), `"RUN make"`) {
		t.Errorf("Record(b) on a's failed record = %v, want an error naming step \"RUN make\"", err)
	}
	for _, id := range []string{"a", "b", "idle"} {
		if s, k := recorded(t, db, id); s || k {
			t.Errorf("%s has a snapshot record %v, a key %v after the failed flush; want neither", id, s, k)
		}
	}
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b", "used"} {
		if g.Exists(id) {
			t.Errorf("%s's layer stays on disk without a record after Close", id)
		}
	}
}

// TestCloseRemovesUnrecorded: a layer whose step committed it and ended
// without a Record (the build failed first) is removed by Close.
func TestCloseRemovesUnrecorded(t *testing.T) {
	r, g, _ := setup(t)
	commit(t, r, g, "a", "")
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	if g.Exists("a") {
		t.Error("a's layer, committed and never recorded, stays after Close")
	}
}

// commitNamed is commit for the step named desc.
func commitNamed(t *testing.T, r *Records, g *gatedSync, id, parent, desc string) {
	t.Helper()
	commit(t, r, g, id, parent)
	r.Committed(cache.Snapshot{ID: id, Parent: parent, Description: desc})
}

// TestRecordAfterClose: a step that records once the state is closing
// (Close ran) fails with an error, and flushes nothing: Close released
// the descriptor the flush would use.
func TestRecordAfterClose(t *testing.T) {
	r, g, db := setup(t)
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	commit(t, r, g, "a", "")
	done := record(r, "a")
	select {
	case err := <-done:
		if err == nil || !strings.Contains(err.Error(), "closed") {
			t.Errorf("Record(a) after Close = %v, want an error saying the records are closed", err)
		}
	case <-g.entered:
		g.gate <- nil
		t.Fatal("Record(a) after Close flushed")
	}
	if s, k := recorded(t, db, "a"); s || k {
		t.Errorf("a has a snapshot record %v, a key %v after Close; want neither", s, k)
	}
	if err := r.Record(cache.Result{}, llb.DigestStrings("key", "none")); err == nil {
		t.Error("Record of keys alone after Close succeeded")
	}
}

// TestCloseWaitsForFlush: Close while a flush writes a layer's record
// waits for it, and leaves the layer it recorded (no record names a
// removed layer).
func TestCloseWaitsForFlush(t *testing.T) {
	r, g, db := setup(t)
	commit(t, r, g, "a", "")
	da := record(r, "a")
	<-g.entered // a's flush began
	closed := make(chan error, 1)
	go func() { closed <- r.Close() }()
	select {
	case err := <-closed:
		t.Fatalf("Close returned (%v) while a flush ran", err)
	case <-time.After(200 * time.Millisecond):
	}
	g.gate <- nil
	if err := <-da; err != nil {
		t.Fatal(err)
	}
	if err := <-closed; err != nil {
		t.Fatal(err)
	}
	if s, k := recorded(t, db, "a"); !s || !k {
		t.Errorf("a has a snapshot record %v, a key %v; want both", s, k)
	}
	if !g.Exists("a") {
		t.Error("a's layer, recorded by the flush Close waited for, was removed")
	}
}
