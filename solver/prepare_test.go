package solver

import (
	"context"
	"io"
	"sync"
	"testing"
	"time"

	"github.com/builder-dev/builder/llb"
	"github.com/opencontainers/go-digest"
)

// prepOp is a sumOp that notes when it was told to prepare and when it
// started running.
type prepOp struct {
	*sumOp
	mu       sync.Mutex
	prepared []time.Time
	ran      time.Time
}

func (o *prepOp) Prepare() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.prepared = append(o.prepared, time.Now())
}

func (o *prepOp) Run(ctx context.Context, in []Result, log io.Writer) (Result, error) {
	o.mu.Lock()
	o.ran = time.Now()
	o.mu.Unlock()
	return o.sumOp.Run(ctx, in, log)
}

// A step that misses the cache is told so before its slow input runs, so
// its set-up overlaps the input; a step that hits it is never told.
func TestSolvePrepareBeforeInputsOnlyOnMiss(t *testing.T) {
	f := newFixture()
	const slow = 300 * time.Millisecond
	base := f.vertex(1, slow)
	top := f.vertex(2, 0, base)
	p := &prepOp{sumOp: f.ops[top.Digest()]}
	ops := func(v *llb.Vertex) (Op, error) {
		if v.Digest() == top.Digest() {
			return p, nil
		}
		return f.op(v)
	}
	cache := &memCache{m: map[digest.Digest]Result{}}
	if _, err := New(ops, cache, nil, 2).Solve(t.Context(), top); err != nil {
		t.Fatal(err)
	}
	if len(p.prepared) != 1 {
		t.Fatalf("Prepare called %d times on a miss, want 1", len(p.prepared))
	}
	if ahead := p.ran.Sub(p.prepared[0]); ahead < slow {
		t.Errorf("Prepare came %v before the step ran, want at least its input's %v", ahead, slow)
	}

	p.prepared = nil
	if _, err := New(ops, cache, nil, 2).Solve(t.Context(), top); err != nil {
		t.Fatal(err)
	}
	if len(p.prepared) != 0 {
		t.Errorf("Prepare called %d times on a cached build, want 0", len(p.prepared))
	}
}
