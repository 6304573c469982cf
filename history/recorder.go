package history

import (
	"strings"
	"sync"

	"github.com/builder-dev/builder/solver"
)

// Recorder is a solver.Progress that remembers each step for the build's
// history record, keeping the tail of each step's output.
type Recorder struct {
	mu      sync.Mutex
	steps   map[int]*Step
	order   []int
	started map[int]bool
	logs    map[int][]byte
}

// NewRecorder returns an empty Recorder.
func NewRecorder() *Recorder {
	return &Recorder{steps: map[int]*Step{}, started: map[int]bool{}, logs: map[int][]byte{}}
}

// Event records e.
func (r *Recorder) Event(e solver.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	st := r.steps[e.Index]
	if st == nil {
		st = &Step{Index: e.Index, Name: e.Name, Status: "cancelled"}
		r.steps[e.Index] = st
		r.order = append(r.order, e.Index)
	}
	if st.Name == "" {
		st.Name = e.Name
	}
	switch e.Kind {
	case solver.Started:
		r.started[e.Index] = true
		if e.Reason != "" {
			st.Reason = e.Reason
		}
	case solver.Cached:
		st.Status = "cached"
	case solver.Completed:
		st.Status, st.Duration = "done", e.Duration
		st.Usage = usageOf(e.Usage)
	case solver.Failed:
		st.Status, st.Duration = "failed", e.Duration
		st.Usage = usageOf(e.Usage)
		if e.Err != nil {
			st.Error = e.Err.Error()
		}
	case solver.Log:
		st.LogBytes += int64(len(e.Data))
		l := append(r.logs[e.Index], e.Data...)
		if len(l) > 2*LogTail {
			l = append([]byte(nil), l[len(l)-LogTail:]...)
		}
		r.logs[e.Index] = l
		if !r.started[e.Index] {
			// A log-only step (the export) has no other events.
			st.Status = "done"
		}
	}
}

func usageOf(u *solver.Usage) *Usage {
	if u == nil {
		return nil
	}
	return &Usage{CPU: u.CPU, PeakMemory: u.PeakMemory, ReadBytes: u.ReadBytes, WriteBytes: u.WriteBytes}
}

// Result returns the recorded steps, in the order they first appeared,
// and their output.
func (r *Recorder) Result() ([]Step, map[int][]byte) {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Step, 0, len(r.order))
	for _, i := range r.order {
		out = append(out, *r.steps[i])
	}
	return out, r.logs
}

// RedactArgs returns the command line with the values of flags that may
// carry secrets (--secret's source, build args whose names look secret)
// replaced.
func RedactArgs(args []string) []string {
	out := make([]string, len(args))
	copy(out, args)
	for i := 0; i < len(out); i++ {
		a := out[i]
		name, val, inline := strings.Cut(a, "=")
		if !strings.HasPrefix(name, "--") {
			continue
		}
		redact := ""
		switch name {
		case "--secret", "--ssh":
			redact = "****"
		case "--build-arg":
			if !inline && i+1 < len(out) {
				val = out[i+1]
			}
			if k, _, has := strings.Cut(val, "="); has && secretLike(k) {
				redact = k + "=****"
			}
		}
		if redact == "" {
			continue
		}
		if inline {
			out[i] = name + "=" + redact
		} else if i+1 < len(out) {
			out[i+1] = redact
			i++
		}
	}
	return out
}

// secretLike reports whether a build arg's name suggests a credential.
func secretLike(name string) bool {
	n := strings.ToLower(name)
	for _, w := range []string{"secret", "token", "password", "passwd", "key", "auth", "credential"} {
		if strings.Contains(n, w) {
			return true
		}
	}
	return false
}
