package server

import (
	"errors"

	"github.com/builder-dev/builder/server/api"
	"github.com/builder-dev/builder/solver"
	"github.com/opencontainers/go-digest"
)

// EncodeProgress puts a solver event on the wire.
func EncodeProgress(e solver.Event) *api.Progress {
	p := &api.Progress{Kind: string(e.Kind), Vertex: e.Vertex.String(), Step: e.Index, Name: e.Name, Time: e.Time, Duration: e.Duration, Data: e.Data, Reason: e.Reason}
	if e.Err != nil {
		p.Error = e.Err.Error()
	}
	if u := e.Usage; u != nil {
		p.HasUsage, p.CPU, p.PeakMemory, p.ReadBytes, p.WriteBytes = true, u.CPU, u.PeakMemory, u.ReadBytes, u.WriteBytes
	}
	return p
}

// DecodeProgress is EncodeProgress's inverse, for the client's printer.
func DecodeProgress(p *api.Progress) solver.Event {
	e := solver.Event{Kind: solver.EventKind(p.Kind), Vertex: digest.Digest(p.Vertex), Index: p.Step, Name: p.Name, Time: p.Time, Duration: p.Duration, Data: p.Data, Reason: p.Reason}
	if p.Error != "" {
		e.Err = errors.New(p.Error)
	}
	if p.HasUsage {
		e.Usage = &solver.Usage{CPU: p.CPU, PeakMemory: p.PeakMemory, ReadBytes: p.ReadBytes, WriteBytes: p.WriteBytes}
	}
	return e
}
