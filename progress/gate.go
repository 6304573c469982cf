package progress

import (
	"sync"

	"github.com/builder-dev/builder/solver"
)

// Gate holds events back while Hold is in effect (a debug shell has the
// terminal), so that steps still running do not write over it.
type Gate struct {
	Printer
	mu sync.RWMutex
}

// Event passes e on unless held, then waits.
func (g *Gate) Event(e solver.Event) {
	g.mu.RLock()
	defer g.mu.RUnlock()
	g.Printer.Event(e)
}

// Hold holds events back until the returned release is called.
func (g *Gate) Hold() (release func()) {
	g.mu.Lock()
	return g.mu.Unlock
}

// Tee is p that also sends every event to also.
func Tee(p Printer, also solver.Progress) Printer { return tee{p, also} }

type tee struct {
	Printer
	also solver.Progress
}

func (t tee) Event(e solver.Event) {
	t.also.Event(e)
	t.Printer.Event(e)
}
