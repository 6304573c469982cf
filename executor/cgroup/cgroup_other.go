//go:build !linux

package cgroup

import (
	"errors"
	"runtime"
	"time"
)

// Group is a sandbox's cgroup; there are none on this OS.
type Group struct{ Name string }

// New returns a nil Group when l asks for no limit, and an error naming
// the OS otherwise.
func New(l Limits) (*Group, error) {
	if l.Requested() {
		return nil, errors.New("resource limits are not supported on " + runtime.GOOS)
	}
	return nil, nil
}

func (g *Group) Add(pid int) error  { return errors.New("cgroups are not supported on " + runtime.GOOS) }
func (g *Group) Kill() error        { return errors.New("cgroups are not supported on " + runtime.GOOS) }
func (g *Group) OOMKilled() bool    { return false }
func (g *Group) MemoryLimit() int64 { return 0 }
func (g *Group) Usage() Usage       { return Usage{} }
func (g *Group) CPU() time.Duration { return 0 }
func (g *Group) Delete() error      { return errors.New("cgroups are not supported on " + runtime.GOOS) }

// RemoveStale does nothing: there are no cgroups on this OS.
func RemoveStale() {}
