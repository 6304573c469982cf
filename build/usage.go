package build

import (
	"sync"

	"github.com/builder-dev/builder/executor/cgroup"
	"github.com/builder-dev/builder/solver"
)

// Limits are a RUN step's cgroup limits (Options.Resources).
type Limits = cgroup.Limits

// StepUsage is what one step's processes used, from its cgroup; the
// metadata file lists them under "builder.steps".
type StepUsage struct {
	// Step is the step's number in the progress output (#N).
	Step int `json:"step"`
	// Name is the step, e.g. "[2/3] RUN make".
	Name string `json:"name"`
	// Duration is the step's wall time in seconds.
	Duration float64 `json:"duration"`
	// CPU is user plus system CPU time in seconds.
	CPU float64 `json:"cpu"`
	// PeakMemory, ReadBytes and WriteBytes are in bytes; 0 where the
	// host does not account for them.
	PeakMemory uint64 `json:"peakMemory"`
	ReadBytes  uint64 `json:"readBytes"`
	WriteBytes uint64 `json:"writeBytes"`
}

// stepUsages passes progress events on and keeps the usage of the steps
// that completed.
type stepUsages struct {
	next  solver.Progress
	mu    sync.Mutex
	steps []StepUsage
}

func (p *stepUsages) Event(e solver.Event) {
	if e.Kind == solver.Completed && e.Usage != nil {
		p.mu.Lock()
		p.steps = append(p.steps, StepUsage{
			Step: e.Index, Name: e.Name, Duration: e.Duration.Seconds(), CPU: e.Usage.CPU.Seconds(),
			PeakMemory: e.Usage.PeakMemory, ReadBytes: e.Usage.ReadBytes, WriteBytes: e.Usage.WriteBytes,
		})
		p.mu.Unlock()
	}
	if p.next != nil {
		p.next.Event(e)
	}
}

func (p *stepUsages) list() []StepUsage {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]StepUsage(nil), p.steps...)
}
