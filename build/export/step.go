package export

import (
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/builder-dev/builder/llb"
	"github.com/builder-dev/builder/solver"
	"github.com/docker/go-units"
)

// step reports the export's work (compressing layers, pushing) as
// output lines of one more numbered step of the build's progress, after the
// graph's own. It sends only log events: a step that ran or was cached is
// a graph vertex, and a no-op rebuild's export has nothing to say.
type step struct {
	p     solver.Progress
	index int
	start time.Time
	mu    sync.Mutex
}

const exportStepName = "exporting"

// newStep starts the step; roots are the build graphs (one per platform),
// whose distinct vertices take the numbers before it.
func newStep(p solver.Progress, roots ...*llb.Vertex) *step {
	if p == nil {
		return nil
	}
	n := 0
	llb.Walk(roots, func(*llb.Vertex) error { n++; return nil })
	return &step{p: p, index: n + 1, start: time.Now()}
}

// Write forwards output lines of the export to the progress stream.
func (e *step) Write(b []byte) (int, error) {
	if e == nil {
		return len(b), nil
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	e.p.Event(solver.Event{Kind: solver.Log, Index: e.index, Name: exportStepName, Data: append([]byte(nil), b...), Time: time.Now()})
	return len(b), nil
}

// done reports a failed export.
func (e *step) done(err error) {
	if e == nil || err == nil {
		return
	}
	fmt.Fprintf(e, "failed after %.2fs: %v\n", time.Since(e.start).Seconds(), err)
}

// logWriter is the step as an io.Writer, or nil (no log) without one.
func (e *step) logWriter() io.Writer {
	if e == nil {
		return nil
	}
	return e
}

// pushed reports a push with the size of what the image is made of.
func (e *step) pushed(ref string, size int64, took time.Duration) {
	if e == nil {
		return
	}
	fmt.Fprintf(e, "pushed %s: %s of blobs in %.2fs (%s/s)\n", ref, units.HumanSize(float64(size)), took.Seconds(),
		units.HumanSize(float64(size)/max(took.Seconds(), 1e-3)))
}
