// Package sink writes, on a `builder serve` client, the outputs a build
// streams back (-o type=local, tar, oci, docker).
package sink

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/builder-dev/builder/internal/archive"
)

// Output is where an -o value's data lands on the client.
type Output struct {
	Dest string
	Dir  bool
}

// New returns a sink for outputs, by index into the request's -o values.
func New(ctx context.Context, outputs map[int]Output) *Sink {
	return &Sink{ctx: ctx, outputs: outputs}
}

// Sink writes a build's output events: a file output as it comes, a
// directory output (a tar) through a pipe into the tar extractor.
type Sink struct {
	ctx     context.Context
	outputs map[int]Output
	open    map[int]io.WriteCloser
	done    map[int]chan error
}

// Write writes a chunk of output i.
func (s *Sink) Write(i int, data []byte) error {
	o, ok := s.outputs[i]
	if !ok {
		return fmt.Errorf("builder server sent output %d, which was not asked for", i)
	}
	if s.open == nil {
		s.open, s.done = map[int]io.WriteCloser{}, map[int]chan error{}
	}
	w, ok := s.open[i]
	if !ok {
		var err error
		if w, err = s.start(i, o); err != nil {
			return err
		}
		s.open[i] = w
	}
	_, err := w.Write(data)
	return err
}

func (s *Sink) start(i int, o Output) (io.WriteCloser, error) {
	if !o.Dir {
		return os.Create(o.Dest)
	}
	if err := os.MkdirAll(o.Dest, 0o755); err != nil {
		return nil, err
	}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	s.done[i] = done
	go func() {
		_, err := archive.Extract(s.ctx, o.Dest, tar.NewReader(pr), archive.Options{NoLchown: os.Geteuid() != 0})
		if err == nil {
			// The tar's trailing padding; the writer must not block.
			_, err = io.Copy(io.Discard, pr)
		}
		pr.CloseWithError(err)
		done <- err
	}()
	return pw, nil
}

// Close ends every output, reporting what failed in writing them.
func (s *Sink) Close() error {
	var errs []error
	for i, w := range s.open {
		errs = append(errs, w.Close())
		if d := s.done[i]; d != nil {
			if err := <-d; err != nil && !errors.Is(err, fs.ErrClosed) {
				errs = append(errs, fmt.Errorf("writing output %s: %w", s.outputs[i].Dest, err))
			}
		}
	}
	s.open = nil
	return errors.Join(errs...)
}
