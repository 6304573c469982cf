package solver

import (
	"context"
	"sync"
	"time"
)

// CPUReporter is implemented by the log writer an Op's Run gets: whatever
// runs the op's processes in a cgroup of their own hands it a reader of
// the CPU time they used so far, once they are in it (the executor does,
// given the log as the process's output), so that the solver can tell a
// step that waits (sleep, network, disk) from one that computes.
type CPUReporter interface {
	ReportCPU(used func() time.Duration)
}

// admitInterval is how often a waiting step looks at what the running
// ones use: short next to a step, long enough for a usage figure to mean
// something (a cgroup's CPU time is counted in microseconds).
const admitInterval = 50 * time.Millisecond

// admission decides when a step may start. Up to limit steps run whatever
// they do. Beyond that, up to max, one more starts while the running steps
// leave a CPU free: the CPU time their cgroups used over the last interval,
// plus one CPU for the newcomer, is at most limit (and a quarter, for the
// noise of short intervals). A step counts as one CPU until it has been
// measured over an interval, and always when it reports no reader (an op
// that works in this process: COPY, a pull). So a build of CPU-bound steps
// runs limit of them, as a plain count would, while steps that sleep or
// wait on I/O do not hold the others back.
//
// Steps that compete with other processes for the CPU use less of it than
// they would alone and may let one more step in; the bound max still holds.
type admission struct {
	limit, max int

	mu      sync.Mutex
	running map[*meter]bool
	// freed is closed, and replaced, whenever a step ends.
	freed chan struct{}
}

// meter is one running step's CPU use.
type meter struct {
	used func() time.Duration // nil: not known, counts as one CPU
	at   time.Time            // when last was read; zero before
	last time.Duration
	rate float64 // CPUs used between the last two readings; <0 before
}

func newAdmission(limit int) *admission {
	return &admission{limit: limit, max: limit, running: map[*meter]bool{}, freed: make(chan struct{})}
}

// acquire waits until a step may start and returns its meter, which
// release takes back.
func (a *admission) acquire(ctx context.Context) (*meter, error) {
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	for {
		a.mu.Lock()
		if n := len(a.running); n < a.limit || n < a.max && a.busy(time.Now())+1 <= float64(a.limit)+0.25 {
			m := &meter{rate: -1}
			a.running[m] = true
			a.mu.Unlock()
			return m, nil
		}
		freed := a.freed
		a.mu.Unlock()
		var tick <-chan time.Time
		if a.max > a.limit {
			if timer == nil {
				timer = time.NewTimer(admitInterval)
			} else {
				timer.Reset(admitInterval)
			}
			tick = timer.C
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-freed:
		case <-tick:
		}
	}
}

// busy reads the running steps' meters that are an interval old and
// returns how many CPUs they use. a.mu is held.
func (a *admission) busy(now time.Time) float64 {
	total := 0.0
	for m := range a.running {
		if m.used != nil && now.Sub(m.at) >= admitInterval {
			cur := m.used()
			if !m.at.IsZero() && cur >= m.last {
				m.rate = float64(cur-m.last) / float64(now.Sub(m.at))
			}
			m.at, m.last = now, cur
		}
		if m.rate < 0 {
			total++
		} else {
			total += m.rate
		}
	}
	return total
}

// report gives m its reader of CPU time, and reads it: the step's rate
// is known an interval later.
func (a *admission) report(m *meter, used func() time.Duration) {
	cur := used()
	a.mu.Lock()
	defer a.mu.Unlock()
	m.used, m.at, m.last, m.rate = used, time.Now(), cur, -1
}

func (a *admission) release(m *meter) {
	a.mu.Lock()
	defer a.mu.Unlock()
	delete(a.running, m)
	close(a.freed)
	a.freed = make(chan struct{})
}

// Admission is the admission of steps that several solvers share, so that
// solvers solving at once (a bake's groups of targets) run no more steps
// in all than one solver would.
type Admission struct{ a *admission }

// NewAdmission admits parallelism steps, and more up to n while the running
// ones leave a CPU free (see admission).
func NewAdmission(parallelism, n int) *Admission {
	a := newAdmission(parallelism)
	a.max = max(a.limit, n)
	return &Admission{a: a}
}

// ShareAdmission makes s admit its steps by a, in place of its own, before
// it solves.
func (s *Solver) ShareAdmission(a *Admission) { s.adm = a.a }

// ReportCPU implements CPUReporter.
func (w *logWriter) ReportCPU(used func() time.Duration) {
	if w.meter != nil {
		w.s.adm.report(w.meter, used)
	}
}
