package gc

import (
	"context"
	"sync"
	"time"

	"github.com/builder-dev/builder/cache"
	"github.com/builder-dev/builder/cache/content"
	"github.com/builder-dev/builder/cache/coord"
	"github.com/builder-dev/builder/cache/gcplan"
	"github.com/builder-dev/builder/cache/usage"
	"github.com/builder-dev/builder/solver"
	"github.com/opencontainers/go-digest"
)

// Use records what one build uses of the cache, as solver.Cache sees
// it: every hit and every recorded result. At the end of the build it is
// written as last-use times (one transaction). The build's lease file,
// which its context carries to the lookups, keeps the GC of this process
// and of others off what it uses until the build ends.
type Use struct {
	// Cache is the cache the build's solver reads and records through
	// Use; a build may put the remote caches behind it.
	solver.Cache
	db      *cache.DB
	content *content.Store
	file    *coord.LeaseFile
	mu      sync.Mutex
	keys    []digest.Digest
	snaps   []string
	blobs   []digest.Digest
}

// A Use must lock keys, or the builds of other processes stop sharing
// steps with this one.
var _ solver.KeyLocker = (*Use)(nil)

// Lookup looks key up in the cache and notes a hit.
func (u *Use) Lookup(ctx context.Context, key digest.Digest) (solver.Result, bool, error) {
	r, ok, err := u.Cache.Lookup(ctx, key)
	if ok {
		u.note(key, r.Snapshot)
	}
	return r, ok, err
}

// Record notes keys and their result and records them in the cache.
func (u *Use) Record(ctx context.Context, r solver.Result, keys ...digest.Digest) error {
	// Noted before recording, so that the lease covers the result as soon
	// as it exists.
	for _, k := range keys {
		u.note(k, r.Snapshot)
	}
	return u.Cache.Record(ctx, r, keys...)
}

// LockKey implements solver.KeyLocker: a step that a build in another
// process is running is waited for.
func (u *Use) LockKey(ctx context.Context, key digest.Digest, waiting func(string)) (func(), error) {
	l, err := u.db.LockKey(ctx, key, waiting)
	if err != nil {
		return nil, err
	}
	return func() { l.Unlock() }, nil
}

func (u *Use) note(key digest.Digest, snap string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.keys = append(u.keys, key)
	if snap != "" {
		u.snaps = append(u.snaps, snap)
	}
}

func (u *Use) lease() gcplan.Lease {
	u.mu.Lock()
	defer u.mu.Unlock()
	return gcplan.Lease{
		Snapshots: append([]string(nil), u.snaps...),
		Keys:      append([]digest.Digest(nil), u.keys...),
		Blobs:     append([]digest.Digest(nil), u.blobs...),
	}
}

// leaseTable holds the uses of the builds of one Collector running in this
// process: a Prune, or one build's automatic GC, must spare the others'
// (their lease files say so too).
type leaseTable struct {
	mu   sync.Mutex
	uses map[*Use]bool
}

func (t *leaseTable) add(u *Use) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.uses == nil {
		t.uses = map[*Use]bool{}
	}
	t.uses[u] = true
}

func (t *leaseTable) remove(u *Use) {
	t.mu.Lock()
	defer t.mu.Unlock()
	delete(t.uses, u)
}

// all returns the leases of the builds running.
func (t *leaseTable) all() []gcplan.Lease {
	t.mu.Lock()
	us := make([]*Use, 0, len(t.uses))
	for u := range t.uses {
		us = append(us, u)
	}
	t.mu.Unlock()
	out := make([]gcplan.Lease, 0, len(us))
	for _, u := range us {
		out = append(out, u.lease())
	}
	return out
}

// StartUse begins a build over inner, the state directory's cache: it
// makes the build's lease, carried by the context it returns, in which the
// build must run. FinishUse must follow, also when the build fails.
func (s *Collector) StartUse(ctx context.Context, inner solver.Cache) (context.Context, *Use, error) {
	l, err := s.DB.NewLease()
	if err != nil {
		return ctx, nil, err
	}
	u := &Use{Cache: inner, db: s.DB, content: s.Content, file: l}
	s.leases.add(u)
	return cache.WithLease(ctx, l), u, nil
}

// FinishUse ends a build, successful or not: it writes the last-use times
// of what the build used, with the build's hints (cache.DB.FlushHints), and, if the cache is over the policy's limit, runs
// the GC with the build's use (and that of other builds still running) as
// leases, then releases the build's lease. Problems are reported to warn;
// the build's result stands.
func (s *Collector) FinishUse(ctx context.Context, u *Use, policy *Policy, warn func(string)) {
	if warn == nil {
		warn = func(string) {}
	}
	defer func() {
		s.leases.remove(u)
		if err := u.file.Close(); err != nil {
			warn("releasing the build's lease: " + err.Error())
		}
	}()
	l := u.lease()
	err := usage.Touch(s.DB, usage.Use{Snapshots: l.Snapshots, Keys: l.Keys, Time: time.Now().UTC()}, s.Snapshots.Usage)
	if err != nil {
		warn("recording cache use: " + err.Error())
	}
	// The build's hints (file digests, step history) rode in Touch's
	// transaction if it wrote, else in an earlier one; what is left is
	// written now, in one transaction.
	if err := s.DB.FlushHints(); err != nil {
		warn("recording file digests and step history: " + err.Error())
	}
	if ctx.Err() != nil {
		return
	}
	if _, err := s.autoGC(ctx, policy); err != nil {
		warn("automatic build cache GC: " + err.Error())
	}
}
