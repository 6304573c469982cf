// Package cgroup gives each sandbox its own cgroup, beneath the cgroup
// builder itself runs in (never at a hierarchy's root), with Docker's
// resource limits, and reads back what the sandbox used. It handles cgroup
// v1, v2 and hybrid hosts through github.com/containerd/cgroups/v3.
//
// The lifecycle of a Group: New (creates the directories and writes the
// limits), Add (the sandbox init's pid, before it runs anything of the
// user's), Kill (on cancel), OOMKilled and Usage (after the init was reaped),
// Delete. Groups are named "builder-PID-N" after the builder process that
// made them, so that a later builder can remove those a killed one left.
package cgroup

import (
	"errors"
	"fmt"
	"runtime"
	"time"

	"github.com/docker/go-units"
)

// DefaultPidsLimit is the pids limit of a sandbox that asks for none, so
// that a fork bomb in a Dockerfile cannot take the machine down. It is
// applied wherever a cgroup can be made, and silently left out elsewhere.
const DefaultPidsLimit = 4096

// Limits are a sandbox's resource limits, spelled as Docker's and
// Buildah's flags are. The zero value asks for no limit but the default
// pids limit.
type Limits struct {
	// Memory is the memory limit in bytes (--memory); 0 is none.
	Memory int64
	// MemorySwap is the limit of memory plus swap in bytes
	// (--memory-swap): 0 is twice Memory, as in Docker; -1 is unlimited
	// swap. It needs Memory.
	MemorySwap int64
	// CPUs is how many CPUs' worth of time the sandbox may use (--cpus);
	// 0 is no limit.
	CPUs float64
	// CPUShares is the relative CPU weight (--cpu-shares, 1024 is
	// normal); 0 leaves the default.
	CPUShares uint64
	// PidsLimit is the maximum number of processes (--pids-limit): 0 is
	// DefaultPidsLimit, -1 is unlimited.
	PidsLimit int64
}

// Requested says whether any limit was asked for explicitly. A sandbox
// that needs a cgroup for them fails without one; one that asks for none
// runs without a cgroup where none can be made (rootless without a
// delegated cgroup v2 subtree).
func (l Limits) Requested() bool {
	return l.Memory != 0 || l.MemorySwap != 0 || l.CPUs != 0 || l.CPUShares != 0 || l.PidsLimit > 0
}

// Validate checks the limits as Docker does, naming the flag at fault.
func (l Limits) Validate() error {
	const minMemory = 6 << 20
	switch {
	case l.Memory < 0:
		return fmt.Errorf("--memory %d: must not be negative", l.Memory)
	case l.Memory > 0 && l.Memory < minMemory:
		return fmt.Errorf("--memory %s: the minimum is 6 MiB", units.BytesSize(float64(l.Memory)))
	case l.MemorySwap != 0 && l.Memory == 0:
		return errors.New("--memory-swap needs --memory")
	case l.MemorySwap < -1:
		return fmt.Errorf("--memory-swap %d: want a size or -1 for unlimited", l.MemorySwap)
	case l.MemorySwap > 0 && l.MemorySwap < l.Memory:
		return errors.New("--memory-swap must be at least --memory (it limits memory plus swap)")
	case l.CPUs < 0:
		return fmt.Errorf("--cpus %g: must not be negative", l.CPUs)
	case l.CPUs > float64(runtime.NumCPU()):
		return fmt.Errorf("--cpus %g: this machine has %d CPUs", l.CPUs, runtime.NumCPU())
	case l.CPUs > 0 && l.CPUs < 0.01:
		return fmt.Errorf("--cpus %g: the minimum is 0.01", l.CPUs)
	case l.CPUShares > 262144 || l.CPUShares == 1:
		return fmt.Errorf("--cpu-shares %d: want 2 to 262144", l.CPUShares)
	case l.PidsLimit < -1:
		return fmt.Errorf("--pids-limit %d: want a positive number or -1 for unlimited", l.PidsLimit)
	}
	return nil
}

// pids is the pids limit to write, 0 for none.
func (l Limits) pids() int64 {
	switch {
	case l.PidsLimit == 0:
		return DefaultPidsLimit
	case l.PidsLimit < 0:
		return 0
	}
	return l.PidsLimit
}

// memorySwap is the memory+swap limit to write: -1 unlimited, 0 none.
func (l Limits) memorySwap() int64 {
	if l.Memory > 0 && l.MemorySwap == 0 {
		return 2 * l.Memory
	}
	return l.MemorySwap
}

// cpuPeriod is the CFS period the --cpus quota is measured against, as in
// Docker.
const cpuPeriod = 100000

func (l Limits) cpuQuota() int64 { return int64(l.CPUs * cpuPeriod) }

// Usage is what a sandbox's processes used, read from its cgroup. A field
// is zero where the host's cgroups do not account for it.
type Usage struct {
	// CPU is user plus system CPU time.
	CPU time.Duration
	// PeakMemory is the largest memory use seen, in bytes (memory.peak on
	// v2, memory.max_usage_in_bytes on v1).
	PeakMemory uint64
	// ReadBytes and WriteBytes are bytes read from and written to block
	// devices (io.stat on v2, blkio on v1).
	ReadBytes, WriteBytes uint64
}

// IsZero says whether nothing was measured.
func (u Usage) IsZero() bool { return u == Usage{} }

// Check refuses limits that are invalid, or that cannot be applied here
// (rootless without a delegated cgroup), before any step runs.
func (l Limits) Check() error {
	if err := l.Validate(); err != nil {
		return err
	}
	if !l.Requested() {
		return nil
	}
	g, err := New(l)
	if err != nil || g == nil {
		return err
	}
	return g.Delete()
}
