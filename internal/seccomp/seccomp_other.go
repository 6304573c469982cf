//go:build !linux

package seccomp

import (
	"errors"
	"runtime"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
)

var errNotLinux = errors.New("seccomp is not supported on " + runtime.GOOS)

// DefaultProfile fails: Docker's profile is resolved only on Linux.
func DefaultProfile(caps []string) (*specs.LinuxSeccomp, error) { return nil, errNotLinux }

// Default fails: Docker's profile is resolved only on Linux.
func Default(caps []string) ([]bpf.RawInstruction, error) { return nil, errNotLinux }

// DefaultElidingSync fails: Docker's profile is resolved only on Linux.
func DefaultElidingSync(caps []string) ([]bpf.RawInstruction, error) { return nil, errNotLinux }
