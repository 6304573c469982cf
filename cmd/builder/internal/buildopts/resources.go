package buildopts

import (
	"fmt"

	"github.com/builder-dev/builder/executor/cgroup"
	"github.com/docker/go-units"
	"github.com/spf13/pflag"
)

// Resources are the cgroup limits of `build` (every RUN step) and
// `run`, spelled as Docker's and Buildah's.
type Resources struct {
	memory, memorySwap string
	cpus               float64
	cpuShares          uint64
	pidsLimit          int64
}

func AddResources(fl *pflag.FlagSet, f *Resources) {
	fl.StringVarP(&f.memory, "memory", "m", "", "memory limit of each process sandbox, e.g. 512m or 2g")
	fl.StringVar(&f.memorySwap, "memory-swap", "", "limit of memory plus swap (default twice --memory; -1 unlimited swap)")
	fl.Float64Var(&f.cpus, "cpus", 0, "how many CPUs' time each process sandbox may use, e.g. 1.5")
	fl.Uint64Var(&f.cpuShares, "cpu-shares", 0, "relative CPU weight (default 1024)")
	fl.Int64Var(&f.pidsLimit, "pids-limit", 0, fmt.Sprintf("maximum number of processes (default %d; -1 unlimited)", cgroup.DefaultPidsLimit))
}

func (f *Resources) Limits() (cgroup.Limits, error) {
	l := cgroup.Limits{CPUs: f.cpus, CPUShares: f.cpuShares, PidsLimit: f.pidsLimit}
	var err error
	if f.memory != "" {
		if l.Memory, err = units.RAMInBytes(f.memory); err != nil {
			return l, fmt.Errorf("--memory %s: %w", f.memory, err)
		}
	}
	switch f.memorySwap {
	case "":
	case "-1":
		l.MemorySwap = -1
	default:
		if l.MemorySwap, err = units.RAMInBytes(f.memorySwap); err != nil {
			return l, fmt.Errorf("--memory-swap %s: %w", f.memorySwap, err)
		}
	}
	return l, l.Validate()
}
