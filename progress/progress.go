// Package progress renders solver events for people (tty, plain) and
// programs (rawjson), and makes untrusted text safe to print on a terminal.
package progress

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/builder-dev/builder/solver"
	"golang.org/x/term"
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
	misses  []miss
}

// miss is a step that ran, and why its cache could not be used.
type miss struct{ name, reason string }

// Explain prints why each step that ran could not be reused.
func (p *plainProgress) Explain(w io.Writer) {
	p.mu.Lock()
	defer p.mu.Unlock()
	explainMisses(w, p.misses)
}

func explainMisses(w io.Writer, misses []miss) {
	if len(misses) == 0 {
		fmt.Fprintln(w, "explain: every step was reused from the cache")
		return
	}
	fmt.Fprintln(w, "explain: steps that ran, and why the cache could not be used:")
	for _, m := range misses {
		fmt.Fprintf(w, "  %s: %s\n", Printable(m.name), Printable(m.reason))
	}
}

// Printer is a solver.Progress that ends with a summary.
type Printer interface {
	solver.Progress
	// Close ends the display; err is the build's error, if any.
	Close(err error)
}

// New picks the renderer for --progress: tty (live, in place),
// plain, rawjson or quiet; auto means tty on a terminal, plain elsewhere.
func New(w io.Writer, mode string) (Printer, error) {
	if mode == "auto" {
		mode = "plain"
		if width, ok := terminalWidth(w); ok {
			return newTTYProgress(w, width), nil
		}
	}
	switch mode {
	case "tty":
		width, _ := terminalWidth(w)
		return newTTYProgress(w, width), nil
	case "rawjson":
		return newJSONProgress(w), nil
	case "plain", "quiet":
		return &plainProgress{w: w, quiet: mode == "quiet", started: map[int]time.Time{}, named: map[int]bool{}, partial: map[int][]byte{}, start: time.Now()}, nil
	}
	return nil, fmt.Errorf("--progress=%s: use auto, tty, plain, rawjson or quiet", mode)
}

// terminalWidth returns w's width when w is a terminal.
func terminalWidth(w io.Writer) (int, bool) {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return 0, false
	}
	width, _, err := term.GetSize(int(f.Fd()))
	if err != nil {
		return 80, true
	}
	return width, true
}

func (p *plainProgress) Event(e solver.Event) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if e.Kind == solver.Started && e.Reason != "" {
		p.misses = append(p.misses, miss{name: e.Name, reason: e.Reason})
	}
	if p.quiet {
		return
	}
	if !p.named[e.Index] {
		p.named[e.Index] = true
		fmt.Fprintf(p.w, "#%d %s\n", e.Index, Printable(e.Name))
	}
	switch e.Kind {
	case solver.Cached:
		fmt.Fprintf(p.w, "#%d CACHED\n", e.Index)
	case solver.Started:
		p.started[e.Index] = e.Time
		if e.Reason != "" {
			fmt.Fprintf(p.w, "#%d not cached: %s\n", e.Index, Printable(e.Reason))
		}
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
			fmt.Fprintf(p.w, "#%d DONE %.1fs%s\n", e.Index, e.Duration.Seconds(), usageSuffix(e.Usage))
		} else {
			fmt.Fprintf(p.w, "#%d ERROR %s\n", e.Index, Printable(fmt.Sprint(e.Err)))
		}
	}
}

func (p *plainProgress) line(idx int, l []byte) {
	// Time since the step started; a step that only logs (the export)
	// counts from the build's start.
	since, ok := p.started[idx]
	if !ok {
		since = p.start
	}
	fmt.Fprintf(p.w, "#%d %.3f %s\n", idx, time.Since(since).Seconds(), l)
}

// Close prints the failed step's last output lines, as a summary above the
// error.
func (p *plainProgress) Close(err error) {
	if !p.quiet {
		printFailure(p.w, err)
	}
}

func (p *jsonProgress) Close(error) {}

// printFailure shows the last lines a failed step printed.
func printFailure(w io.Writer, err error) {
	var ve *solver.VertexError
	if !errors.As(err, &ve) || len(ve.Output) == 0 {
		return
	}
	fmt.Fprintf(w, "------\n > %s:\n", Printable(ve.Instruction))
	for _, l := range ve.Output {
		fmt.Fprintf(w, "%s\n", strings.TrimRight(l, "\r"))
	}
	fmt.Fprintln(w, "------")
}
