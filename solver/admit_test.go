package solver

import (
	"context"
	"io"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/builder-dev/builder/llb"
	"github.com/opencontainers/go-digest"
)

// cpuOp runs for hold and reports a CPU reader: idle (no CPU time), busy
// (one CPU all along) or none at all. It counts how many run at once.
type cpuOp struct {
	name       string
	cpu        string // "idle", "busy" or "none"
	hold       time.Duration
	live, peak *atomic.Int32
}

func (o cpuOp) CacheKey(context.Context, []digest.Digest) (digest.Digest, error) {
	return digest.FromString(o.name), nil
}

func (o cpuOp) Run(ctx context.Context, _ []Result, log io.Writer) (Result, error) {
	n := o.live.Add(1)
	defer o.live.Add(-1)
	for p := o.peak.Load(); n > p && !o.peak.CompareAndSwap(p, n); p = o.peak.Load() {
	}
	start := time.Now()
	switch o.cpu {
	case "idle":
		log.(CPUReporter).ReportCPU(func() time.Duration { return time.Millisecond })
	case "busy":
		log.(CPUReporter).ReportCPU(func() time.Duration { return time.Since(start) })
	}
	select {
	case <-time.After(o.hold):
	case <-ctx.Done():
		return Result{}, ctx.Err()
	}
	return Result{Snapshot: o.name}, nil
}

// TestAdmitWhileIdle checks that beyond the parallelism (1 here) steps
// start while the running ones use no CPU, not while they use it or do
// not say, and never more than the bound.
func TestAdmitWhileIdle(t *testing.T) {
	for _, tc := range []struct {
		cpu       string
		steps     int
		bound     int
		wantPeak  int32
		wantUnder time.Duration // the whole solve, when the steps overlap
	}{
		{cpu: "idle", steps: 3, bound: 3, wantPeak: 3, wantUnder: 900 * time.Millisecond},
		{cpu: "idle", steps: 5, bound: 3, wantPeak: 3},
		{cpu: "busy", steps: 3, bound: 3, wantPeak: 1},
		{cpu: "none", steps: 3, bound: 3, wantPeak: 1},
	} {
		t.Run(tc.cpu+"-"+strconv.Itoa(tc.steps), func(t *testing.T) {
			var live, peak atomic.Int32
			var leaves []*llb.Vertex
			ops := map[digest.Digest]Op{}
			for i := range tc.steps {
				name := tc.cpu + strconv.Itoa(i)
				v := llb.NewVertex(llb.ExecOp{Args: []string{name}}, nil, llb.Meta{Name: "RUN " + name})
				leaves = append(leaves, v)
				ops[v.Digest()] = cpuOp{name: name, cpu: tc.cpu, hold: 400 * time.Millisecond, live: &live, peak: &peak}
			}
			root := llb.NewVertex(llb.ExecOp{Args: []string{"root"}}, leaves, llb.Meta{Name: "root"})
			ops[root.Digest()] = cpuOp{name: "root", cpu: "none", live: &live, peak: &peak}
			s := New(func(v *llb.Vertex) (Op, error) { return ops[v.Digest()], nil }, &memCache{m: map[digest.Digest]Result{}}, nil, 1)
			s.ShareAdmission(NewAdmission(1, tc.bound))
			start := time.Now()
			if _, err := s.Solve(t.Context(), root); err != nil {
				t.Fatal(err)
			}
			if got := peak.Load(); got != tc.wantPeak {
				t.Errorf("%d %s steps with parallelism 1, bound %d: %d ran at once, want %d", tc.steps, tc.cpu, tc.bound, got, tc.wantPeak)
			}
			if d := time.Since(start); tc.wantUnder > 0 && d > tc.wantUnder {
				t.Errorf("solve took %s, want under %s (the idle steps at once)", d, tc.wantUnder)
			}
		})
	}
}

// TestShareAdmission checks that two solvers sharing one admission of 2
// never run more than 2 steps at once between them.
func TestShareAdmission(t *testing.T) {
	var live, peak atomic.Int32
	adm := NewAdmission(2, 2)
	done := make(chan error, 2)
	for s := range 2 {
		var leaves []*llb.Vertex
		ops := map[digest.Digest]Op{}
		for i := range 3 {
			name := "busy" + strconv.Itoa(s) + strconv.Itoa(i)
			v := llb.NewVertex(llb.ExecOp{Args: []string{name}}, nil, llb.Meta{Name: "RUN " + name})
			leaves = append(leaves, v)
			ops[v.Digest()] = cpuOp{name: name, cpu: "busy", hold: 150 * time.Millisecond, live: &live, peak: &peak}
		}
		root := llb.NewVertex(llb.ExecOp{Args: []string{"root" + strconv.Itoa(s)}}, leaves, llb.Meta{Name: "root"})
		ops[root.Digest()] = cpuOp{name: "root" + strconv.Itoa(s), cpu: "none", live: &live, peak: &peak}
		sv := New(func(v *llb.Vertex) (Op, error) { return ops[v.Digest()], nil }, &memCache{m: map[digest.Digest]Result{}}, nil, 2)
		sv.ShareAdmission(adm)
		go func() {
			_, err := sv.Solve(t.Context(), root)
			done <- err
		}()
	}
	for range 2 {
		if err := <-done; err != nil {
			t.Fatal(err)
		}
	}
	if p := peak.Load(); p != 2 {
		t.Fatalf("peak of two solvers sharing an admission of 2 = %d steps, want 2", p)
	}
}
