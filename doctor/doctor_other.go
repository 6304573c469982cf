//go:build !linux

package doctor

import (
	"context"
	"runtime"
)

// Host is where the checks look; only Linux has checks.
type Host struct{}

// RealHost describes this machine.
func RealHost() Host { return Host{} }

// Run reports that builds need Linux.
func Run(ctx context.Context, h Host) Report {
	return Report{Checks: []Check{{Name: "os", Status: Fail,
		Detail: "builds run on Linux only, not on " + runtime.GOOS, Fix: "run builder on Linux (or in a Linux VM)"}}}
}
