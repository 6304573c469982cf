package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/builder-dev/builder/solver"
)

// plainProgress prints solver events as numbered lines, the way BuildKit's
// plain mode does, readable in CI logs.
type plainProgress struct {
	mu      sync.Mutex
	w       io.Writer
	quiet   bool
	started map[int]time.Time
	named   map[int]bool
	partial map[int][]byte
	start   time.Time
}

func newProgress(w io.Writer, mode string) (*plainProgress, error) {
	switch mode {
	case "auto", "plain", "tty":
	case "quiet":
	default:
		return nil, fmt.Errorf("--progress=%s: use auto, plain or quiet", mode)
	}
	return &plainProgress{w: w, quiet: mode == "quiet", started: map[int]time.Time{}, named: map[int]bool{}, partial: map[int][]byte{}, start: time.Now()}, nil
}

func (p *plainProgress) Event(e solver.Event) {
	if p.quiet {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if !p.named[e.Index] {
		p.named[e.Index] = true
		fmt.Fprintf(p.w, "#%d %s\n", e.Index, e.Name)
	}
	switch e.Kind {
	case solver.Cached:
		fmt.Fprintf(p.w, "#%d CACHED\n", e.Index)
	case solver.Started:
		p.started[e.Index] = e.Time
	case solver.Log:
		buf := append(p.partial[e.Index], e.Data...)
		for {
			i := bytes.IndexByte(buf, '\n')
			if i < 0 {
				break
			}
			p.line(e.Index, buf[:i])
			buf = buf[i+1:]
		}
		p.partial[e.Index] = buf
	case solver.Completed, solver.Failed:
		if rest := p.partial[e.Index]; len(rest) > 0 {
			p.line(e.Index, rest)
			delete(p.partial, e.Index)
		}
		if e.Kind == solver.Completed {
			fmt.Fprintf(p.w, "#%d DONE %.1fs\n", e.Index, e.Duration.Seconds())
		} else {
			fmt.Fprintf(p.w, "#%d ERROR %v\n", e.Index, e.Err)
		}
	}
}

func (p *plainProgress) line(idx int, l []byte) {
	fmt.Fprintf(p.w, "#%d %.3f %s\n", idx, time.Since(p.started[idx]).Seconds(), l)
}

// Close prints the failed step's last output lines, as a summary above the
// error.
func (p *plainProgress) Close(err error) {
	var ve *solver.VertexError
	if p.quiet || !errors.As(err, &ve) || len(ve.Output) == 0 {
		return
	}
	fmt.Fprintf(p.w, "------\n > %s:\n", ve.Instruction)
	for _, l := range ve.Output {
		fmt.Fprintf(p.w, "%s\n", strings.TrimRight(l, "\r"))
	}
	fmt.Fprintln(p.w, "------")
}
