package server

import (
	"bytes"
	"io"
	"strings"
	"sync"

	"github.com/builder-dev/builder/server/api"
)

// Lines returns a writer that sends each line written to it as a message
// to the client (what a local build would print on stderr).
func (e *Emitter) Lines() io.Writer { return &lineWriter{em: e} }

// StdoutLines returns a writer that sends each line written to it to the
// client's stdout (what a local `build --check` prints there).
func (e *Emitter) StdoutLines() io.Writer { return &lineWriter{em: e, stdout: true} }

// lineWriter sends each line written to it as a message to the client.
type lineWriter struct {
	mu     sync.Mutex
	em     *Emitter
	stdout bool
	buf    []byte
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf = append(w.buf, p...)
	for {
		i := bytes.IndexByte(w.buf, '\n')
		if i < 0 {
			return len(p), nil
		}
		w.em.send(api.Event{Kind: api.KindMessage, Text: string(w.buf[:i]), Stdout: w.stdout})
		w.buf = w.buf[i+1:]
	}
}

// SetDest replaces an -o value's dest with a path of the server.
func SetDest(spec, dest string) string {
	if !strings.Contains(spec, "=") {
		return "type=local,dest=" + dest
	}
	var fields []string
	for _, f := range strings.Split(spec, ",") {
		if k, _, _ := strings.Cut(f, "="); strings.EqualFold(strings.TrimSpace(k), "dest") {
			continue
		}
		fields = append(fields, f)
	}
	return strings.Join(append(fields, "dest="+dest), ",")
}
