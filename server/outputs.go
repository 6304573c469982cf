package server

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/builder-dev/builder/internal/archive"
	"github.com/builder-dev/builder/output"
	"github.com/builder-dev/builder/server/api"
)

// chunkSize bounds the data of one output event.
const chunkSize = 256 << 10

// ClientOutput reports whether an -o value is written on the client (its
// dest names a client path), and whether as a directory (type=local).
func ClientOutput(spec string) (client, dir bool, err error) {
	o, err := output.Parse(spec)
	if err != nil {
		return false, false, err
	}
	switch o.Type {
	case "local":
		return true, true, nil
	case "tar", "oci", "docker":
		return o.Dest != "", false, nil
	}
	return false, false, nil
}

// sendOutputs streams each client output from outDir: a directory as a
// tar, a file as it is.
func sendOutputs(ctx context.Context, req *api.BuildRequest, outDir string, em *Emitter) error {
	for i, spec := range req.Outputs {
		client, dir, err := ClientOutput(spec)
		if err != nil || !client {
			continue
		}
		w := &chunkWriter{em: em, index: i}
		p := OutputPath(outDir, i)
		if dir {
			err = archive.WriteDiff(ctx, p, w, archive.DiffOptions{})
		} else {
			err = copyFile(w, p)
		}
		if err == nil {
			err = w.flush()
		}
		if err != nil {
			return fmt.Errorf("sending output %s: %w", spec, err)
		}
	}
	return nil
}

func copyFile(w io.Writer, p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(w, f)
	return err
}

// chunkWriter turns a byte stream into output events of at most chunkSize.
type chunkWriter struct {
	em    *Emitter
	index int
	buf   []byte
}

func (c *chunkWriter) Write(p []byte) (int, error) {
	n := len(p)
	for len(p) > 0 {
		k := min(chunkSize-len(c.buf), len(p))
		c.buf = append(c.buf, p[:k]...)
		p = p[k:]
		if len(c.buf) == chunkSize {
			c.flush()
		}
	}
	return n, nil
}

// flush sends what is buffered; an empty output still sends one event so
// the client creates it.
func (c *chunkWriter) flush() error {
	c.em.send(api.Event{Kind: api.KindOutput, Output: c.index, Data: c.buf})
	c.buf = nil
	return nil
}
