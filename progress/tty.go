package progress

import (
	"bytes"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/builder-dev/builder/solver"
)

// ttyProgress redraws the build's state in place on a terminal: one line
// per step with its timer, CACHED or DONE, and the last lines of output of
// the steps that are running.
type ttyProgress struct {
	mu     sync.Mutex
	w      io.Writer
	width  int
	steps  []*ttyStep
	byIdx  map[int]*ttyStep
	lines  int // lines drawn last time, to move back over
	start  time.Time
	done   chan struct{}
	closed bool
	wg     sync.WaitGroup
}

type ttyStep struct {
	index      int
	name       string
	state      solver.EventKind
	started    time.Time
	took       time.Duration
	tail       []string
	partial    []byte
	reason     string
	errMessage string
	usage      *solver.Usage
}

const ttyTailLines = 4

func newTTYProgress(w io.Writer, width int) *ttyProgress {
	if width <= 20 {
		width = 80
	}
	p := &ttyProgress{w: w, width: width, byIdx: map[int]*ttyStep{}, start: time.Now(), done: make(chan struct{})}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		t := time.NewTicker(100 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-t.C:
				p.mu.Lock()
				p.draw()
				p.mu.Unlock()
			case <-p.done:
				return
			}
		}
	}()
	return p
}

func (p *ttyProgress) Event(e solver.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	s, ok := p.byIdx[e.Index]
	if !ok {
		s = &ttyStep{index: e.Index, name: Printable(e.Name)}
		p.byIdx[e.Index] = s
		p.steps = append(p.steps, s)
	}
	switch e.Kind {
	case solver.Started:
		s.state, s.started, s.reason = e.Kind, e.Time, e.Reason
	case solver.Cached:
		s.state = e.Kind
	case solver.Completed, solver.Failed:
		s.state, s.took, s.usage = e.Kind, e.Duration, e.Usage
		if e.Err != nil {
			s.errMessage = Printable(e.Err.Error())
		}
	case solver.Log:
		buf := append(s.partial, e.Data...)
		for {
			i := bytes.IndexByte(buf, '\n')
			if i < 0 {
				break
			}
			s.tail = append(s.tail, string(buf[:i]))
			buf = buf[i+1:]
		}
		s.partial = buf
		if len(s.tail) > ttyTailLines {
			s.tail = s.tail[len(s.tail)-ttyTailLines:]
		}
	}
}

// draw rewrites the display: cursor up over the last drawing, then every
// line cleared and written again.
func (p *ttyProgress) draw() {
	var b strings.Builder
	if p.lines > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", p.lines)
	}
	n := 0
	line := func(s string) {
		if len(s) > p.width-1 {
			s = s[:p.width-1]
		}
		b.WriteString("\x1b[2K" + s + "\n")
		n++
	}
	line(fmt.Sprintf("[+] Building %.1fs", time.Since(p.start).Seconds()))
	for _, s := range p.steps {
		switch s.state {
		case solver.Cached:
			line(fmt.Sprintf(" => CACHED %s", s.name))
		case solver.Completed:
			line(fmt.Sprintf(" => %s %.1fs%s", s.name, s.took.Seconds(), usageSuffix(s.usage)))
		case solver.Failed:
			line(fmt.Sprintf(" => ERROR %s %.1fs", s.name, s.took.Seconds()))
		case solver.Started:
			line(fmt.Sprintf(" => %s %.1fs", s.name, time.Since(s.started).Seconds()))
			for _, t := range s.tail {
				line("    " + strings.TrimRight(t, "\r"))
			}
		default:
			// A step that only logs (the export).
			line(fmt.Sprintf(" => %s", s.name))
			for _, t := range s.tail {
				line("    " + strings.TrimRight(t, "\r"))
			}
		}
	}
	// Clear what a longer earlier drawing left below.
	for i := n; i < p.lines; i++ {
		b.WriteString("\x1b[2K\n")
	}
	if extra := p.lines - n; extra > 0 {
		fmt.Fprintf(&b, "\x1b[%dA", extra)
	}
	p.lines = n
	io.WriteString(p.w, b.String())
}

// Close stops the redrawing and leaves the final state on the screen.
func (p *ttyProgress) Close(err error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return
	}
	p.closed = true
	p.mu.Unlock()
	close(p.done)
	p.wg.Wait()
	p.mu.Lock()
	defer p.mu.Unlock()
	p.draw()
	printFailure(p.w, err)
}

// Explain prints why each step that ran could not be reused.
func (p *ttyProgress) Explain(w io.Writer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	var misses []miss
	for _, s := range p.steps {
		if s.reason != "" {
			misses = append(misses, miss{name: s.name, reason: s.reason})
		}
	}
	explainMisses(w, misses)
}
