package build

import (
	"testing"

	"github.com/builder-dev/builder/build/stephistory"
	"github.com/builder-dev/builder/frontend/dockerfile"
	"github.com/builder-dev/builder/llb"
	"github.com/builder-dev/builder/solver"
)

// countEvents counts the events it gets.
type countEvents struct{ n int }

func (c *countEvents) Event(solver.Event) { c.n++ }

// TestGraphsRouting: in a solve of several targets, a shared vertex's
// events reach every target that holds it, another's only its own, and a
// step ID that two targets use in different scopes has no history.
func TestGraphsRouting(t *testing.T) {
	base := llb.NewVertex(llb.ImageOp{Ref: "base"}, nil, llb.Meta{StepID: "Dockerfile:base:0"})
	runA := llb.NewVertex(llb.ExecOp{Args: []string{"a"}}, []*llb.Vertex{base}, llb.Meta{StepID: "Dockerfile:app:1"})
	runB := llb.NewVertex(llb.ExecOp{Args: []string{"b"}}, []*llb.Vertex{base}, llb.Meta{StepID: "Dockerfile:app:1"})
	mk := func(root *llb.Vertex, scope string) (*target, *countEvents) {
		c := &countEvents{}
		return &target{fe: &dockerfile.Result{Root: root}, steps: &stepUsages{next: c}, history: stephistory.New(nil, scope)}, c
	}
	a, evA := mk(runA, "ctx-a")
	b, evB := mk(runB, "ctx-b")
	again, evAgain := mk(runA, "ctx-a")
	g := newGraphs([]*target{a, b, again})
	g.Event(solver.Event{Kind: solver.Started, Vertex: base.Digest()})
	g.Event(solver.Event{Kind: solver.Started, Vertex: runA.Digest()})
	if evA.n != 2 || evAgain.n != 2 || evB.n != 1 {
		t.Errorf("events: a %d, a again %d, b %d; want 2, 2, 1", evA.n, evAgain.n, evB.n)
	}
	if g.owner(runB.Digest()) != b || g.owner(base.Digest()) != a {
		t.Errorf("runB runs with another target's session")
	}
	if _, ok := g.steps["Dockerfile:app:1"]; !ok || g.steps["Dockerfile:app:1"] != nil {
		t.Errorf("step app:1 of scopes ctx-a and ctx-b has a history: %v", g.steps["Dockerfile:app:1"])
	}
	if _, ok := g.Previous("Dockerfile:app:1"); ok {
		t.Errorf("Previous found a record of a step of two scopes")
	}
	g.Remember("Dockerfile:app:1", solver.StepRecord{}) // must not write (no db here)
}
