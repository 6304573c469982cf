package solver

import (
	"context"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/builder-dev/builder/llb"
	"github.com/opencontainers/go-digest"
)

// describedOp is a sumOp that lists its key's parts, counting the calls.
type describedOp struct {
	sumOp
	described *atomic.Int32
}

func (o *describedOp) KeyParts() []Part {
	o.described.Add(1)
	return []Part{{Name: "file:a", Value: strconv.Itoa(o.n)}}
}

// keyHistory keeps step records in memory; like the state dir's, it asks
// for a record's parts only when the key is new.
type keyHistory struct {
	mu   sync.Mutex
	recs map[string]StepRecord
}

func (h *keyHistory) Previous(id string) (StepRecord, bool) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r, ok := h.recs[id]
	return r, ok
}

func (h *keyHistory) Remember(id string, rec StepRecord) {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.recs[id].Key == rec.Key {
		return
	}
	if rec.Parts == nil && rec.Describe != nil {
		rec.Parts = rec.Describe()
	}
	h.recs[id] = rec
}

// TestCachedStepMakesNoKeyParts: the parts of a step's key (a COPY of a
// large context has one per file) are made when a step runs and its
// record is new, not on a rebuild that finds the step cached and its
// record current; an explanation still gets them.
func TestCachedStepMakesNoKeyParts(t *testing.T) {
	var described, runs, live, peak atomic.Int32
	n := 1
	v := llb.NewVertex(llb.ExecOp{Args: []string{"x"}}, nil, llb.Meta{Name: "op", StepID: "Dockerfile:1"})
	op := &describedOp{sumOp: sumOp{n: 1, runs: &runs, live: &live, peak: &peak}, described: &described}
	ops := func(*llb.Vertex) (Op, error) { return op, nil }
	cache := &memCache{m: map[digest.Digest]Result{}}
	h := &keyHistory{recs: map[string]StepRecord{}}
	solve := func() {
		t.Helper()
		s := New(ops, cache, nil, 1)
		s.SetHistory(h)
		if _, err := s.Solve(context.Background(), v); err != nil {
			t.Fatal(err)
		}
	}
	solve()
	if got := described.Load(); got != 1 || h.recs["Dockerfile:1"].Parts["file:a"] != "1" {
		t.Fatalf("first build: parts made %d times, record %v; want once, with file:a", got, h.recs["Dockerfile:1"])
	}
	solve()
	if got := described.Load(); got != 1 || runs.Load() != 1 {
		t.Errorf("cached rebuild: parts made %d times in all and %d runs, want 1 and 1 (none for the cached step)", got, runs.Load())
	}
	// A changed key misses the cache: the explanation compares parts.
	op.n = n + 1
	events := &reasons{}
	s := New(ops, cache, events, 1)
	s.SetHistory(h)
	if _, err := s.Solve(context.Background(), v); err != nil {
		t.Fatal(err)
	}
	if got := events.all(); len(got) != 1 || got[0] != "files changed: a modified" {
		t.Errorf("explanations %q, want one naming the changed file", got)
	}
}

// reasons keeps the Reason of every Started event.
type reasons struct {
	mu sync.Mutex
	r  []string
}

func (p *reasons) Event(e Event) {
	if e.Kind == Started {
		p.mu.Lock()
		p.r = append(p.r, e.Reason)
		p.mu.Unlock()
	}
}

func (p *reasons) all() []string {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.r
}
