package solver

import (
	"bytes"
	"sync"
	"time"

	"github.com/builder-dev/builder/llb"
	"github.com/opencontainers/go-digest"
)

// EventKind says what happened to a vertex.
type EventKind string

const (
	Started   EventKind = "started"
	Cached    EventKind = "cached"
	Completed EventKind = "completed"
	Failed    EventKind = "failed"
	Log       EventKind = "log"
)

// Event is one progress report about a vertex.
type Event struct {
	Kind     EventKind
	Vertex   digest.Digest
	Index    int
	Name     string
	Time     time.Time
	Duration time.Duration
	// Data is a chunk of output, for Log events.
	Data []byte
	Err  error
	// Reason says why a started step could not be reused from the cache.
	Reason string
}

// Progress receives events; it must be safe for concurrent use.
type Progress interface {
	Event(Event)
}

type discard struct{}

func (discard) Event(Event) {}

const tailLines = 10

// logWriter forwards a step's output as events and keeps its last lines
// for the error message.
type logWriter struct {
	s  *Solver
	v  *llb.Vertex
	mu sync.Mutex
	// last holds the end of the output, enough for tailLines lines.
	last []byte
}

func (w *logWriter) Write(p []byte) (int, error) {
	w.s.emit(w.v, Event{Kind: Log, Data: append([]byte(nil), p...)})
	w.mu.Lock()
	w.last = append(w.last, p...)
	if len(w.last) > 8192 {
		w.last = w.last[len(w.last)-8192:]
	}
	w.mu.Unlock()
	return len(p), nil
}

func (w *logWriter) tail() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	lines := bytes.Split(bytes.TrimRight(w.last, "\n"), []byte("\n"))
	if len(lines) > tailLines {
		lines = lines[len(lines)-tailLines:]
	}
	var out []string
	for _, l := range lines {
		if len(l) > 0 {
			out = append(out, string(l))
		}
	}
	return out
}
