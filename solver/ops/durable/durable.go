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
package durable

import (
	"errors"
	"fmt"
	"slices"
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
	// err is the first failed Sync (or the failure to open syncer):
	// pages it lost may belong to any layer not recorded yet, so every
	// later record fails with it.
	err error
	// pending are the snapshots committed and not yet recorded, by id:
	// Chain knows them, and the first Record of each writes it.
	pending map[string]*pending
	// open is the batch that the next flush writes; flushing is whether
	// a goroutine is writing batches.
	open     *batch
	flushing bool
	// failed are snapshots whose records could not be written (they are
	// removed): nothing above them is recorded either.
	failed map[string]bool
}

// New returns the Records of snaps' layers in db (snaps nil: for Chain
// only). Close it after the last Record.
func New(db *cache.DB, snaps snapshot.Snapshotter) *Records {
	r := &Records{DB: db, Snapshots: snaps}
	if snaps == nil { // for Chain alone
		return r
	}
	if r.syncer, r.err = snaps.OpenSync(); r.err != nil {
		r.err = fmt.Errorf("flushing snapshots: %w", r.err)
	}
	return r
}

// Close releases the descriptor New opened.
func (r *Records) Close() error {
	if r.syncer == nil {
		return nil
	}
	return r.syncer.Close()
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

// Committed notes the record of snapshot rec.ID, committed with
// CommitUnsynced, for the first Record that names it.
func (r *Records) Committed(rec cache.Snapshot) {
	r.mu.Lock()
	defer r.mu.Unlock()
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
	r.mu.Lock()
	for i, st := range b.steps {
		if bad := r.failedBelow(st); bad != "" || r.err != nil {
			*b.errs[i] = fmt.Errorf("recording snapshot %s: snapshot %s below it could not be recorded", st.Result.Snapshot, bad)
			if r.err != nil {
				*b.errs[i] = fmt.Errorf("recording snapshot %s: %w", st.Result.Snapshot, r.err)
			}
			if st.Snapshot != nil {
				r.fail(st.Snapshot)
				*b.errs[i] = errors.Join(*b.errs[i], r.Snapshots.Remove(st.Snapshot.ID))
			}
			continue
		}
		steps = append(steps, st)
		errs = append(errs, b.errs[i])
	}
	r.mu.Unlock()
	if len(steps) == 0 {
		return
	}
	// Keys alone name snapshots recorded already (or in this batch).
	var err error
	if slices.ContainsFunc(steps, func(st cache.Step) bool { return st.Snapshot != nil }) {
		if err = r.syncer.Sync(); err != nil {
			err = fmt.Errorf("flushing snapshots: %w", err)
			r.mu.Lock()
			r.err = err
			r.mu.Unlock()
		}
	}
	if err == nil {
		err = r.DB.RecordSteps(steps)
	}
	r.mu.Lock()
	for i, st := range steps {
		*errs[i] = err
		if st.Snapshot == nil {
			continue
		}
		delete(r.pending, st.Snapshot.ID)
		if err != nil {
			r.fail(st.Snapshot)
		}
	}
	r.mu.Unlock()
	if err != nil {
		for _, st := range steps {
			if st.Snapshot != nil {
				err = errors.Join(err, r.Snapshots.Remove(st.Snapshot.ID))
			}
		}
		for i := range errs {
			*errs[i] = err
		}
	}
}

// failedBelow names the snapshot whose record failed that st would name
// or sit on, or is "". r.mu is held.
func (r *Records) failedBelow(st cache.Step) string {
	if r.failed[st.Result.Snapshot] {
		return st.Result.Snapshot
	}
	if st.Snapshot != nil && r.failed[st.Snapshot.Parent] {
		return st.Snapshot.Parent
	}
	return ""
}

// fail marks a snapshot whose record was not written. r.mu is held.
func (r *Records) fail(s *cache.Snapshot) {
	if r.failed == nil {
		r.failed = map[string]bool{}
	}
	r.failed[s.ID] = true
	delete(r.pending, s.ID)
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
		p := r.pending[top]
		if p == nil {
			break
		}
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
