package solver

import (
	"context"
	"errors"
	"io"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/builder-dev/builder/llb"
	"github.com/opencontainers/go-digest"
)

// sumOp is an arithmetic fake: its result is its own number plus its
// inputs' results, and it counts its runs.
type sumOp struct {
	n     int
	runs  *atomic.Int32
	delay time.Duration
	fail  bool
	live  *atomic.Int32
	peak  *atomic.Int32
}

func (o *sumOp) CacheKey(_ context.Context, in []digest.Digest) (digest.Digest, error) {
	parts := []string{strconv.Itoa(o.n)}
	for _, k := range in {
		parts = append(parts, k.String())
	}
	return llb.DigestStrings(parts...), nil
}

func (o *sumOp) Run(ctx context.Context, in []Result, _ io.Writer) (Result, error) {
	o.runs.Add(1)
	if n := o.live.Add(1); n > o.peak.Load() {
		o.peak.Store(n)
	}
	defer o.live.Add(-1)
	select {
	case <-time.After(o.delay):
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
	if o.fail {
		return Result{}, errors.New("boom")
	}
	total := o.n
	for _, r := range in {
		v, _ := strconv.Atoi(r.Snapshot)
		total += v
	}
	return Result{Snapshot: strconv.Itoa(total)}, nil
}

type memCache struct {
	mu      sync.Mutex
	m       map[digest.Digest]Result
	records int
}

func (c *memCache) Lookup(_ context.Context, k digest.Digest) (Result, bool, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.m[k]
	return r, ok, nil
}

func (c *memCache) Record(_ context.Context, r Result, keys ...digest.Digest) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, k := range keys {
		c.m[k] = r
	}
	c.records++
	return nil
}

type fixture struct {
	ops        map[digest.Digest]*sumOp
	runs       atomic.Int32
	live, peak atomic.Int32
}

func (f *fixture) vertex(n int, delay time.Duration, inputs ...*llb.Vertex) *llb.Vertex {
	v := llb.NewVertex(llb.ExecOp{Args: []string{strconv.Itoa(n)}}, inputs, llb.Meta{Name: "op " + strconv.Itoa(n)})
	f.ops[v.Digest()] = &sumOp{n: n, runs: &f.runs, delay: delay, live: &f.live, peak: &f.peak}
	return v
}

func (f *fixture) op(v *llb.Vertex) (Op, error) { return f.ops[v.Digest()], nil }

func newFixture() *fixture { return &fixture{ops: map[digest.Digest]*sumOp{}} }

func TestSolveRunsOnceInParallelAndCaches(t *testing.T) {
	f := newFixture()
	base := f.vertex(1, 0)
	a := f.vertex(10, 100*time.Millisecond, base)
	b := f.vertex(20, 100*time.Millisecond, base)
	top := f.vertex(100, 0, a, b, a)
	cache := &memCache{m: map[digest.Digest]Result{}}

	s := New(f.op, cache, nil, 2)
	r, err := s.Solve(t.Context(), top)
	if err != nil {
		t.Fatal(err)
	}
	// base counted once per path: 100 + (10+1) + (20+1) + (10+1)
	if r.Snapshot != "143" {
		t.Errorf("Solve = %s, want 143", r.Snapshot)
	}
	if got := f.runs.Load(); got != 4 {
		t.Errorf("ops ran %d times, want 4 (shared vertices once)", got)
	}
	// Inputs of unknown content: the key by content is the key, which
	// is recorded once per step, not twice.
	if cache.records != 4 {
		t.Errorf("Record called %d times for 4 steps, want 4", cache.records)
	}
	if f.peak.Load() != 2 {
		t.Errorf("peak parallelism = %d, want 2 (a and b together)", f.peak.Load())
	}

	// A new solver over the same cache runs nothing.
	f.runs.Store(0)
	r2, err := New(f.op, cache, nil, 2).Solve(t.Context(), top)
	if err != nil || r2 != r || f.runs.Load() != 0 {
		t.Errorf("cached Solve = %v, %v after %d runs; want %v and no runs", r2, err, f.runs.Load(), r)
	}
}

func TestSolveParallelismBound(t *testing.T) {
	f := newFixture()
	var leaves []*llb.Vertex
	for i := range 6 {
		leaves = append(leaves, f.vertex(i+1, 30*time.Millisecond))
	}
	top := f.vertex(0, 0, leaves...)
	if _, err := New(f.op, &memCache{m: map[digest.Digest]Result{}}, nil, 3).Solve(t.Context(), top); err != nil {
		t.Fatal(err)
	}
	if p := f.peak.Load(); p != 3 {
		t.Errorf("peak parallelism = %d, want the bound 3", p)
	}
}

func TestSolveFailureNamesTheStep(t *testing.T) {
	f := newFixture()
	// The failure comes once the slow step is surely running.
	bad := f.vertex(1, 200*time.Millisecond)
	f.ops[bad.Digest()].fail = true
	slow := f.vertex(2, 10*time.Second)
	top := f.vertex(3, 0, bad, slow)
	start := time.Now()
	_, err := New(f.op, &memCache{m: map[digest.Digest]Result{}}, nil, 2).Solve(t.Context(), top)
	var ve *VertexError
	if !errors.As(err, &ve) || ve.Instruction != "op 1" || ve.Err.Error() != "boom" {
		t.Errorf("Solve error = %v, want a VertexError for op 1", err)
	}
	if time.Since(start) > 5*time.Second {
		t.Error("the failure did not cancel the slow step")
	}
	if ve != nil && (len(ve.Cancelled) != 1 || ve.Cancelled[0] != "op 2") {
		t.Errorf("Cancelled = %v, want [op 2]", ve.Cancelled)
	}
}

func TestSolveStepTimeout(t *testing.T) {
	f := newFixture()
	fast := f.vertex(1, 10*time.Millisecond)
	slow := f.vertex(2, 10*time.Second, fast)
	s := New(f.op, &memCache{m: map[digest.Digest]Result{}}, nil, 2)
	s.SetStepTimeout(300 * time.Millisecond)
	start := time.Now()
	_, err := s.Solve(t.Context(), slow)
	var ve *VertexError
	if !errors.As(err, &ve) || ve.Instruction != "op 2" || !strings.Contains(err.Error(), "timed out after 300ms") {
		t.Errorf("Solve error = %v, want op 2 timed out after 300ms", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("the slow step ran %v despite the timeout", d)
	}
	if f.runs.Load() != 2 {
		t.Errorf("%d steps ran, want 2 (the fast one is within the timeout)", f.runs.Load())
	}
}

// TestSolveInterruptedNamesTheStep cancels the build (Ctrl-C) while a step
// runs: the error still is context.Canceled, and names the step.
func TestSolveInterruptedNamesTheStep(t *testing.T) {
	f := newFixture()
	slow := f.vertex(1, 10*time.Second)
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(200*time.Millisecond, cancel)
	_, err := New(f.op, &memCache{m: map[digest.Digest]Result{}}, nil, 1).Solve(ctx, slow)
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "interrupted while running op 1") {
		t.Errorf("Solve = %v, want context.Canceled naming op 1", err)
	}
}

// slowKeyOp computes its key slowly, as ADD <url> downloads to checksum.
type slowKeyOp struct{ sumOp }

func (o *slowKeyOp) CacheKeyLog(ctx context.Context, in []digest.Digest, log io.Writer) (digest.Digest, error) {
	io.WriteString(log, "downloading\n")
	select {
	case <-time.After(10 * time.Second):
	case <-ctx.Done():
		return "", errors.New("interrupted")
	}
	return o.CacheKey(ctx, in)
}

func TestSolveStepTimeoutCoversSlowKeys(t *testing.T) {
	f := newFixture()
	v := f.vertex(1, 0)
	op := &slowKeyOp{*f.ops[v.Digest()]}
	s := New(func(*llb.Vertex) (Op, error) { return op, nil }, &memCache{m: map[digest.Digest]Result{}}, nil, 1)
	s.SetStepTimeout(200 * time.Millisecond)
	start := time.Now()
	_, err := s.Solve(t.Context(), v)
	if err == nil || !strings.Contains(err.Error(), "op 1: timed out after 200ms") || time.Since(start) > 5*time.Second {
		t.Errorf("Solve = %v after %v, want op 1 timed out after 200ms", err, time.Since(start))
	}
}
