package localctx

import (
	"context"
	"sync"
	"time"

	"github.com/moby/patternmatcher"
)

// A no-op rebuild of a large context walks it (a stat per file) only
// after the base image is resolved, which waits for the registry: Prewalk
// starts the walk beside that wait.

// prewalks are the walks Prewalk started for one build, by tree record ID;
// each is taken once.
type prewalks struct {
	mu sync.Mutex
	m  map[string]*prewalk
}

type prewalk struct {
	done    chan struct{}
	walked  time.Time // when the walk started, as checksum's
	entries []*entry
	err     error
	// rec is the tree's record Prewalk found: the checksum need not read
	// it again (it still holds only if the walk saw what it was made of).
	rec TreeSums
}

type prewalksKey struct{}

// WithPrewalks returns ctx for a build: Prewalk with it starts walks that
// trees given it (UsePrewalk) take.
func WithPrewalks(ctx context.Context) context.Context {
	return context.WithValue(ctx, prewalksKey{}, &prewalks{m: map[string]*prewalk{}})
}

// Prewalk starts walking the whole tree at root (what Checksum(".", nil)
// lists, excludes applied) if sums has the record of that whole tree that
// a checksum of it stores: an earlier build copied all of it, as
// `COPY . /app` does, and its rebuild will again. Any other context is not
// walked ahead, as its files may never be copied whole. ctx is from
// WithPrewalks, else Prewalk does nothing.
func Prewalk(ctx context.Context, root string, excludes []string, sums SumCache) {
	pws, _ := ctx.Value(prewalksKey{}).(*prewalks)
	if pws == nil || sums == nil {
		return
	}
	t, err := NewTree(root, excludes)
	if err != nil {
		return // the checksum reports it
	}
	id := t.treeID(".", nil)
	rec, ok := sums.LookupTree(id)
	if !ok {
		return
	}
	pw := &prewalk{done: make(chan struct{}), walked: time.Now(), rec: rec}
	pws.mu.Lock()
	pws.m[string(id)] = pw
	pws.mu.Unlock()
	go func() {
		defer close(pw.done)
		pw.entries, pw.err = t.collect(".", nil)
	}()
}

// UsePrewalk lets the tree's first checksum of "." without extra filters
// take the walk Prewalk started with ctx for the same root and excludes.
func (t *Tree) UsePrewalk(ctx context.Context) {
	t.prewalks, _ = ctx.Value(prewalksKey{}).(*prewalks)
}

// takePrewalk returns the entries of the walk started for the checksum of
// rel with extra, when it started and the tree's record then; nil if there
// is none or it failed (the checksum walks then). A walk is taken once:
// checksums fill in its entries' digests.
func (t *Tree) takePrewalk(rel string, extra *patternmatcher.PatternMatcher) ([]*entry, time.Time, *TreeSums) {
	if t.prewalks == nil || rel != "." || extra != nil {
		return nil, time.Time{}, nil
	}
	id := string(t.treeID(".", nil))
	t.prewalks.mu.Lock()
	pw := t.prewalks.m[id]
	delete(t.prewalks.m, id)
	t.prewalks.mu.Unlock()
	if pw == nil {
		return nil, time.Time{}, nil
	}
	<-pw.done
	if pw.err != nil {
		return nil, time.Time{}, nil
	}
	return pw.entries, pw.walked, &pw.rec
}
