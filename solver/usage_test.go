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

// usageOp reports what it "used" through the log writer it gets.
type usageOp struct{ u Usage }

func (o usageOp) CacheKey(context.Context, []digest.Digest) (digest.Digest, error) {
	return digest.FromString("usage"), nil
}

func (o usageOp) Run(_ context.Context, _ []Result, log io.Writer) (Result, error) {
	log.(UsageReporter).ReportUsage(o.u)
	return Result{Snapshot: "x"}, nil
}

type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) Event(e Event) {
	r.mu.Lock()
	r.events = append(r.events, e)
	r.mu.Unlock()
}

// TestUsageReachesCompletedEvent checks that what an op reports through
// UsageReporter comes out on its step's completed event.
func TestUsageReachesCompletedEvent(t *testing.T) {
	want := Usage{CPU: 2 * time.Second, PeakMemory: 5 << 20, ReadBytes: 1, WriteBytes: 2}
	v := llb.NewVertex(llb.ExecOp{Args: []string{"x"}}, nil, llb.Meta{Name: "RUN x"})
	rec := &recorder{}
	ops := func(*llb.Vertex) (Op, error) { return usageOp{u: want}, nil }
	if _, err := New(ops, &memCache{m: map[digest.Digest]Result{}}, rec, 1).Solve(t.Context(), v); err != nil {
		t.Fatal(err)
	}
	var got *Usage
	for _, e := range rec.events {
		if e.Kind == Completed {
			got = e.Usage
		}
	}
	if got == nil || *got != want {
		t.Errorf("completed event usage = %v, want %v", got, want)
	}
}
