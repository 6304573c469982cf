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
	// Usage is what the step's processes used, on completed and failed
	// events of steps that ran a process in a cgroup; nil otherwise.
	Usage *Usage
}

// Usage is what a step's processes used, read from its cgroup. A field is
// zero where the host does not account for it.
type Usage struct {
	CPU        time.Duration
	PeakMemory uint64 // bytes
	ReadBytes  uint64
	WriteBytes uint64
}

// UsageReporter is implemented by the log writer an Op's Run gets: an op
// that runs processes reports what they used, for the step's progress.
type UsageReporter interface {
	ReportUsage(Usage)
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
	// usage is what the op reported, if anything.
	usage *Usage
	// meter is the step's at admission.
	meter *meter
}

// ReportUsage implements UsageReporter.
func (w *logWriter) ReportUsage(u Usage) {
	w.mu.Lock()
	w.usage = &u
	w.mu.Unlock()
}

func (w *logWriter) reported() *Usage {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.usage
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
