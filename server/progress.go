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

// encodeError keeps, beside a failed build's message, the failed step's
// instruction and last output lines: the client prints them above the
// error as a local build does.
func encodeError(err error) *api.Error {
	e := &api.Error{Message: err.Error()}
	var ve *solver.VertexError
	if errors.As(err, &ve) {
		e.Instruction, e.Output = ve.Instruction, ve.Output
	}
	var ec interface{ ExitStatus() int }
	if errors.As(err, &ec) {
		e.ExitCode = ec.ExitStatus()
	}
	return e
}

// remoteError is a server's build error: its message as the server had
// it, and the failed step (for the printer's summary) when there is one.
type remoteError struct {
	msg  string
	step *solver.VertexError
	code int
}

func (e *remoteError) Error() string { return e.msg }

// ExitStatus is the code the server's command would have exited with (a
// failed --check's 1), or 0.
func (e *remoteError) ExitStatus() int { return e.code }

func (e *remoteError) Unwrap() error {
	if e.step == nil {
		return nil
	}
	return e.step
}

func decodeError(e *api.Error) error {
	re := &remoteError{msg: e.Message, code: e.ExitCode}
	if e.Instruction != "" || len(e.Output) > 0 {
		re.step = &solver.VertexError{Instruction: e.Instruction, Output: e.Output, Err: errors.New(e.Message)}
	}
	return re
}
