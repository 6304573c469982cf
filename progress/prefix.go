package progress

import (
	"bytes"
	"io"
	"sync"
)

// Lines is a writer shared by several builds running at once: each
// Prefixed writer of it writes whole lines, each starting with its prefix,
// so that the builds' output interleaves by line and stays attributable.
type Lines struct {
	mu sync.Mutex
	w  io.Writer
}

// NewLines returns a Lines over w.
func NewLines(w io.Writer) *Lines { return &Lines{w: w} }

// Prefixed returns a writer whose lines go to l prefixed with prefix; a
// last line without a newline is held until one comes.
func (l *Lines) Prefixed(prefix string) io.Writer {
	return &prefixWriter{l: l, prefix: []byte(prefix)}
}

type prefixWriter struct {
	l       *Lines
	prefix  []byte
	partial []byte
}

func (p *prefixWriter) Write(b []byte) (int, error) {
	p.partial = append(p.partial, b...)
	i := bytes.LastIndexByte(p.partial, '\n')
	if i < 0 {
		return len(b), nil
	}
	var out []byte
	for _, line := range bytes.SplitAfter(p.partial[:i+1], []byte("\n")) {
		if len(line) > 0 {
			out = append(append(out, p.prefix...), line...)
		}
	}
	p.partial = append(p.partial[:0], p.partial[i+1:]...)
	p.l.mu.Lock()
	defer p.l.mu.Unlock()
	if _, err := p.l.w.Write(out); err != nil {
		return 0, err
	}
	return len(b), nil
}
