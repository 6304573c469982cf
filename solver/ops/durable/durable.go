// Package durable writes the records of the snapshots that steps commit,
// and of the steps' results, each only after a flush that began once the
// layer was committed. Steps commit without flushing
// (snapshot.CommitUnsynced), a step's child starts from its parent's layer
// while that is still only in the page cache, and one Sync and one
// metadata transaction cover every step that finished meanwhile: on a
// journaled file system each flush is a journal commit, which a serial
// chain of small steps used to pay twice per step (the syncfs, then the
// transaction's fsyncs). A crash at any point leaves no record naming a
// layer that is not on disk; the layers without records are removed by
// the next GC, as those of a build killed before its records were.
//
// A layer whose record fails may already be under a child step (Chain
// gave it out): it is removed once no step can use it, at Close, and
// until then Chain and the children's Records fail naming the step whose
// record failed. A layer no Chain gave out is removed at once, and so is,
// after a failed flush, every layer committed and not yet recorded.
package durable

import (
	"errors"
	"fmt"
	"slices"
	"strconv"
	"sync"

	"github.com/builder-dev/builder/cache"
	"github.com/builder-dev/builder/snapshot"
	"github.com/opencontainers/go-digest"
)

// Records holds the records of committed snapshots until they are
// written. Make one with New before the layers it records are written.
type Records struct {
	DB        *cache.DB
	Snapshots snapshot.Snapshotter

	// syncer flushes the snapshots' file system through one descriptor
	// opened by New, so that its Sync reports every writeback error
	// since, even one another syncfs reported first.
	syncer snapshot.Syncer
	mu     sync.Mutex
	// err is the failure to open syncer: every record fails with it.
	err error
	// syncErr is the last failed Sync: pages it lost may belong to any
	// layer written before it, the layers Writing announced up to
	// syncUpTo, whose records fail with it. A later layer's lost pages
	// fail a later Sync (which reports an error once), so a server's
	// later builds still record.
	syncErr           error
	syncUpTo, writing uint64
	// pending are the snapshots committed and not yet recorded, by id:
	// Chain knows them, and the first Record of each writes it.
	pending map[string]*pending
	// open is the batch that the next flush writes; flushing is whether
	// a goroutine is writing batches.
	open     *batch
	flushing bool
	// idle is signalled when flushing ends: Close waits for it, so that
	// no record is written of a layer Close removes, nor by a closed DB.
	idle *sync.Cond
	// closed is set by Close: later Records fail.
	closed bool
	// failed are snapshots whose records could not be written, with the
	// error that names the step whose record failed: nothing above them
	// is recorded either.
	failed map[string]error
	// chained are the pending snapshots Chain gave out: a step may run on
	// them. doomed are the failed ones of those, which Close removes.
	chained map[string]bool
	doomed  []string
}

// New returns the Records of snaps' layers in db (snaps nil: for Chain
// only). Close it after the last Record.
func New(db *cache.DB, snaps snapshot.Snapshotter) *Records {
	r := &Records{DB: db, Snapshots: snaps}
	r.idle = sync.NewCond(&r.mu)
	if snaps == nil { // for Chain alone
		return r
	}
	if r.syncer, r.err = snaps.OpenSync(); r.err != nil {
		r.err = fmt.Errorf("flushing snapshots: %w", r.err)
	}
	return r
}

// Close removes the layers whose records failed under steps that may
// have used them, and those committed and never recorded (their steps
// ended without a Record), and releases the descriptor New opened. Call
// it once no step runs. It waits for the records being written; later
// Records fail, and a layer committed after it is left to the cleanup
// of the state's next Open (as a killed build's).
func (r *Records) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return nil
	}
	r.closed = true
	for r.flushing {
		r.idle.Wait()
	}
	ids := r.doomed
	for id, p := range r.pending {
		if !p.queued { // none is now: no flush runs and none can start
			ids = append(ids, id)
		}
	}
	r.doomed, r.pending = nil, nil
	syncer := r.syncer
	r.syncer = nil
	r.mu.Unlock()
	var errs []error
	for _, id := range ids {
		if r.Snapshots != nil { // else Chain alone: none
			errs = append(errs, r.Snapshots.Remove(id))
		}
	}
	if syncer != nil {
		errs = append(errs, syncer.Close())
	}
	return errors.Join(errs...)
}

type pending struct {
	rec    cache.Snapshot
	queued bool
}

type batch struct {
	steps []cache.Step
	errs  []*error
	done  chan struct{}
}

// Writing notes that snapshot id (a number in base 36, as
// cache.DB.NewSnapshotID makes) is about to be written: call it before
// its first write. A layer not announced, or whose id is not such a
// number, fails once any Sync failed.
func (r *Records) Writing(id string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if n, err := strconv.ParseUint(id, 36, 64); err == nil && n > r.writing {
		r.writing = n
	}
}

// Committed notes the record of snapshot rec.ID, committed with
// CommitUnsynced, for the first Record that names it.
func (r *Records) Committed(rec cache.Snapshot) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed { // no Record can write it, nor Close remove it
		return
	}
	if r.pending == nil {
		r.pending = map[string]*pending{}
	}
	r.pending[rec.ID] = &pending{rec: rec}
}

// Record stores res under keys (none: only the snapshot's record), with
// the record of res.Snapshot if it is pending, once a Sync that began
// after the call returned: Records that overlap share one Sync and one
// transaction. If the records cannot be written, the pending snapshot is
// removed and the error returned. The pending snapshots below it that no
// Record queued yet are recorded first, in the same transaction: no
// record names a parent without one.
func (r *Records) Record(res cache.Result, keys ...digest.Digest) error {
	var err error
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		return fmt.Errorf("recording snapshot %s: the records are closed (the state is closing)", res.Snapshot)
	}
	b := r.open
	if b == nil {
		b = &batch{done: make(chan struct{})}
		r.open = b
	}
	var steps []cache.Step
	for id := res.Snapshot; r.pending[id] != nil && !r.pending[id].queued; id = r.pending[id].rec.Parent {
		p := r.pending[id]
		p.queued = true
		rec := p.rec
		steps = append(steps, cache.Step{Result: cache.Result{Snapshot: id}, Snapshot: &rec})
	}
	if len(steps) == 0 {
		steps = append(steps, cache.Step{})
	}
	steps[0].Result, steps[0].Keys = res, keys
	slices.Reverse(steps)
	b.steps = append(b.steps, steps...)
	for range steps[1:] {
		b.errs = append(b.errs, new(error)) // only the caller's step reports
	}
	b.errs = append(b.errs, &err)
	lead := !r.flushing
	r.flushing = true
	r.mu.Unlock()
	if lead {
		go r.flush()
	}
	<-b.done
	return err
}

// flush writes the open batches, one after the other, until none is left.
func (r *Records) flush() {
	for {
		r.mu.Lock()
		b := r.open
		r.open = nil
		if b == nil {
			r.flushing = false
			r.idle.Broadcast()
			r.mu.Unlock()
			return
		}
		r.mu.Unlock()
		r.write(b)
		close(b.done)
	}
}

// write syncs, then records b's steps in one transaction. The Sync
// begins after every step of b was committed: each was committed before
// its Record queued it.
func (r *Records) write(b *batch) {
	var steps []cache.Step
	var errs []*error
	var remove []string
	r.mu.Lock()
	syncer := r.syncer // Close waits for this flush before it takes it
	for i, st := range b.steps {
		cause := r.failedBelow(st)
		if cause == nil {
			cause = r.lostBefore(st)
		}
		if cause != nil {
			*b.errs[i] = fmt.Errorf("recording snapshot %s: %w", st.Result.Snapshot, cause)
			if st.Snapshot != nil {
				remove = r.fail(st.Snapshot, cause, remove)
			}
			continue
		}
		steps = append(steps, st)
		errs = append(errs, b.errs[i])
	}
	r.mu.Unlock()
	defer func() {
		for _, id := range remove {
			if err := r.Snapshots.Remove(id); err != nil {
				for _, e := range b.errs {
					if *e != nil { // a failed step's
						*e = errors.Join(*e, err)
					}
				}
			}
		}
	}()
	if len(steps) == 0 {
		return
	}
	// Keys alone name snapshots recorded already (or in this batch).
	var err error
	syncFailed := false
	if i := slices.IndexFunc(steps, func(st cache.Step) bool { return st.Snapshot != nil }); i >= 0 {
		if err = syncWith(syncer); err != nil {
			err = fmt.Errorf("flushing snapshots: %w", err)
			syncFailed = true
			r.mu.Lock()
			r.syncErr = stepError(steps[i].Snapshot, err) // what earlier layers' records fail with
			r.syncUpTo = r.writing
			r.mu.Unlock()
		}
	}
	if err == nil {
		err = r.DB.RecordSteps(steps)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	for i, st := range steps {
		*errs[i] = err
		if st.Snapshot == nil {
			continue
		}
		if err == nil {
			delete(r.pending, st.Snapshot.ID)
			delete(r.chained, st.Snapshot.ID)
			continue
		}
		*errs[i] = fmt.Errorf("recording snapshot %s: %w", st.Result.Snapshot, stepError(st.Snapshot, err))
		remove = r.fail(st.Snapshot, stepError(st.Snapshot, err), remove)
	}
	if syncFailed {
		// None of the layers committed and not yet recorded can be now.
		for _, p := range r.pending {
			if !p.queued {
				remove = r.fail(&p.rec, r.syncErr, remove)
			}
		}
	}
}

// syncWith flushes the snapshots through s (nil: Records for Chain alone).
func syncWith(s snapshot.Syncer) error {
	if s == nil {
		return errors.New("no snapshotter to flush")
	}
	return s.Sync()
}

// lostBefore is the error that st's record fails with if a failed Sync
// may have lost pages of its layer (written before it), or nil. r.mu is
// held.
func (r *Records) lostBefore(st cache.Step) error {
	if r.err != nil || r.syncErr == nil || st.Snapshot == nil {
		return r.err // keys alone name layers recorded, or failed
	}
	if n, err := strconv.ParseUint(st.Snapshot.ID, 36, 64); err == nil && n > r.syncUpTo {
		return nil
	}
	return r.syncErr
}

// stepError names the step whose snapshot s could not be recorded.
func stepError(s *cache.Snapshot, err error) error {
	return fmt.Errorf("the record of step %q (snapshot %s) failed: %w", s.Description, s.ID, err)
}

// failedBelow is the error of the failed record that st would name or
// sit on, or nil. r.mu is held.
func (r *Records) failedBelow(st cache.Step) error {
	if err := r.failed[st.Result.Snapshot]; err != nil {
		return err
	}
	if st.Snapshot != nil {
		return r.failed[st.Snapshot.Parent]
	}
	return nil
}

// fail marks a snapshot whose record was not written, with the error
// naming the step whose record failed, and returns remove with the
// snapshot added if no step can be on it; else Close removes it. r.mu is
// held.
func (r *Records) fail(s *cache.Snapshot, cause error, remove []string) []string {
	if r.failed == nil {
		r.failed = map[string]error{}
	}
	if r.failed[s.ID] != nil {
		return remove
	}
	r.failed[s.ID] = cause
	delete(r.pending, s.ID)
	if r.chained[s.ID] {
		r.doomed = append(r.doomed, s.ID)
		return remove
	}
	return append(remove, s.ID)
}

// Pending is how many committed snapshots await their records.
func (r *Records) Pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.pending)
}

// Chain is cache.DB.Chain that also knows the pending snapshots: a step
// starts on its parent's layer before the parent's record is written.
func (r *Records) Chain(top string) ([]cache.Snapshot, error) {
	var chain []cache.Snapshot
	r.mu.Lock()
	for top != "" {
		if err := r.failed[top]; err != nil {
			r.mu.Unlock()
			return nil, fmt.Errorf("snapshot %s: %w", top, err)
		}
		p := r.pending[top]
		if p == nil {
			break
		}
		if r.chained == nil {
			r.chained = map[string]bool{}
		}
		r.chained[top] = true
		chain = append(chain, p.rec)
		top = p.rec.Parent
	}
	r.mu.Unlock()
	if top == "" {
		return chain, nil
	}
	below, err := r.DB.Chain(top)
	if err != nil {
		return nil, err
	}
	return append(chain, below...), nil
}
