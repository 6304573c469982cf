package cgroup

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/containerd/cgroups/v3/cgroup1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// v1Used are the v1 controllers a sandbox's cgroup joins: those for
// limits and usage, and freezer to kill it as a whole. cpuset, devices
// and the rest are left alone (a cpuset child would need cpus and mems
// copied down).
var v1Used = []cgroup1.Name{cgroup1.Memory, cgroup1.Cpu, cgroup1.Cpuacct, cgroup1.Pids, cgroup1.Blkio, cgroup1.Freezer}

// v1Group is a sandbox's cgroup on a v1 or hybrid host: one directory per
// controller, each beneath this process's own cgroup of that controller
// (on a hybrid host, say, memory at /a/b/builder-1-1 and pids at
// /builder-1-1).
type v1Group struct {
	cg cgroup1.Cgroup
	// dirs are the group's directories by controller.
	dirs map[cgroup1.Name]string
}

// v1 is the v1 controllers builder uses and this process's cgroup in
// each, found once per process: reading mountinfo and /proc/self/cgroup
// for every step would cost milliseconds.
var v1 struct {
	once       sync.Once
	subsystems []cgroup1.Subsystem
	own        map[cgroup1.Name]string
	err        error
}

func v1Init() error {
	v1.once.Do(func() {
		all, err := cgroup1.Default()
		if err != nil {
			v1.err = fmt.Errorf("%w: %w", ErrUnavailable, err)
			return
		}
		ownPath := cgroup1.NestedPath("")
		v1.own = map[cgroup1.Name]string{}
		for _, s := range all {
			if !slices.Contains(v1Used, s.Name()) {
				continue
			}
			p, err := ownPath(s.Name())
			if err != nil {
				continue // not in /proc/self/cgroup: not usable
			}
			v1.subsystems = append(v1.subsystems, s)
			v1.own[s.Name()] = p
		}
	})
	return v1.err
}

// v1Hierarchy lists the mounted v1 controllers builder uses.
func v1Hierarchy() ([]cgroup1.Subsystem, error) {
	return v1.subsystems, v1Init()
}

// v1Path names the group name beneath this process's cgroup in each
// controller.
func v1Path(name string) cgroup1.Path {
	return func(n cgroup1.Name) (string, error) {
		own, ok := v1.own[n]
		if !ok {
			return "", cgroup1.ErrControllerNotActive
		}
		return filepath.Join(own, name), nil
	}
}

type pather interface{ Path(string) string }

// v1Dirs are the directories of the group name, by controller.
func v1Dirs(name string) map[cgroup1.Name]string {
	dirs := map[cgroup1.Name]string{}
	for _, s := range v1.subsystems {
		if ps, ok := s.(pather); ok {
			dirs[s.Name()] = ps.Path(filepath.Join(v1.own[s.Name()], name))
		}
	}
	return dirs
}

func newV1(name string, l Limits) (*v1Group, error) {
	if err := v1Init(); err != nil {
		return nil, err
	}
	g := &v1Group{dirs: v1Dirs(name)}
	cg, err := cgroup1.New(v1Path(name), l.v1Resources(v1.subsystems), cgroup1.WithHierarchy(v1Hierarchy))
	if err != nil {
		// New stops at the first controller that fails: remove the
		// directories it made in the others.
		g.rmdir()
		return nil, err
	}
	g.cg = cg
	for _, need := range l.v1Needs() {
		if _, ok := g.dirs[need]; !ok {
			g.rmdir()
			return nil, fmt.Errorf("the cgroup v1 %s controller is not mounted, or this process is in none of its cgroups", need)
		}
	}
	return g, nil
}

// loadV1 is the group name as an earlier process left it.
func loadV1(name string) (*v1Group, error) {
	if err := v1Init(); err != nil {
		return nil, err
	}
	cg, err := cgroup1.Load(v1Path(name), cgroup1.WithHierarchy(v1Hierarchy))
	if err != nil {
		return nil, err
	}
	return &v1Group{cg: cg, dirs: v1Dirs(name)}, nil
}

// add moves pid into every directory of the group, as cgroup1's AddProc
// does, with one open and write each (see writeFile).
func (g *v1Group) add(pid int) error {
	p := []byte(strconv.Itoa(pid))
	for _, d := range g.dirs {
		if err := writeFile(filepath.Join(d, "cgroup.procs"), p); err != nil {
			return err
		}
	}
	return nil
}

// rmdir removes the group's directories. The kernel refuses (EBUSY) while
// a process is in one, so unlike cgroup1's Delete this needs no walk of
// the tree first.
func (g *v1Group) rmdir() error {
	var errs []error
	for _, d := range g.dirs {
		if err := unix.Rmdir(d); err != nil && err != unix.ENOENT {
			errs = append(errs, &os.PathError{Op: "rmdir", Path: d, Err: err})
		}
	}
	return errors.Join(errs...)
}

// v1Needs are the controllers the limits that were asked for need.
func (l Limits) v1Needs() []cgroup1.Name {
	var n []cgroup1.Name
	if l.Memory > 0 {
		n = append(n, cgroup1.Memory)
	}
	if l.CPUs > 0 || l.CPUShares > 0 {
		n = append(n, cgroup1.Cpu)
	}
	if l.PidsLimit > 0 {
		n = append(n, cgroup1.Pids)
	}
	return n
}

// v1Resources turns l into what cgroup1 writes. Swap is limited only where
// the kernel accounts for it (memory.memsw.*), unless asked for.
func (l Limits) v1Resources(subsystems []cgroup1.Subsystem) *specs.LinuxResources {
	res := &specs.LinuxResources{}
	if l.Memory > 0 {
		mem := l.Memory
		res.Memory = &specs.LinuxMemory{Limit: &mem}
		swap := l.memorySwap()
		if swap > 0 && (l.MemorySwap != 0 || v1SwapAccounted(subsystems)) {
			res.Memory.Swap = &swap
		}
	}
	if l.CPUs > 0 {
		quota, period := l.cpuQuota(), uint64(cpuPeriod)
		res.CPU = &specs.LinuxCPU{Quota: &quota, Period: &period}
	}
	if l.CPUShares > 0 {
		if res.CPU == nil {
			res.CPU = &specs.LinuxCPU{}
		}
		shares := l.CPUShares
		res.CPU.Shares = &shares
	}
	if n := l.pids(); n > 0 {
		res.Pids = &specs.LinuxPids{Limit: &n}
	}
	return res
}

func v1SwapAccounted(subsystems []cgroup1.Subsystem) bool {
	for _, s := range subsystems {
		if ps, ok := s.(pather); ok && s.Name() == cgroup1.Memory {
			_, err := os.Stat(filepath.Join(ps.Path("/"), "memory.memsw.limit_in_bytes"))
			return err == nil
		}
	}
	return false
}

// kill freezes the group so that nothing forks meanwhile, sends SIGKILL to
// every process in it and thaws it so the signals are delivered.
func (g *v1Group) kill() error {
	if g.cg.Freeze() == nil {
		defer g.cg.Thaw()
	}
	ctl := cgroup1.Freezer
	for _, c := range []cgroup1.Name{cgroup1.Freezer, cgroup1.Pids, cgroup1.Memory, cgroup1.Cpuacct} {
		if _, ok := g.dirs[c]; ok {
			ctl = c
			break
		}
	}
	procs, err := g.cg.Processes(ctl, true)
	if err != nil {
		return fmt.Errorf("listing the processes of a cgroup: %w", err)
	}
	for _, p := range procs {
		unix.Kill(p.Pid, unix.SIGKILL)
	}
	return nil
}

func (g *v1Group) oomKills() uint64 {
	dir, ok := g.dirs[cgroup1.Memory]
	if !ok {
		return 0
	}
	return readKey(filepath.Join(dir, "memory.oom_control"), "oom_kill")
}

// cpu reads cpuacct.usage, 0 without the controller.
func (g *v1Group) cpu() time.Duration {
	if dir, ok := g.dirs[cgroup1.Cpuacct]; ok {
		return time.Duration(readUint(filepath.Join(dir, "cpuacct.usage"))) // ns
	}
	return 0
}

func (g *v1Group) usage() Usage {
	var u Usage
	if dir, ok := g.dirs[cgroup1.Memory]; ok {
		u.PeakMemory = readUint(filepath.Join(dir, "memory.max_usage_in_bytes"))
	}
	u.CPU = g.cpu()
	if dir, ok := g.dirs[cgroup1.Blkio]; ok {
		// The throttle files count every device; the others only
		// those under the CFQ/BFQ schedulers.
		for _, f := range []string{"blkio.throttle.io_service_bytes_recursive", "blkio.io_service_bytes_recursive"} {
			if u.ReadBytes, u.WriteBytes = blkioBytes(filepath.Join(dir, f)); u.ReadBytes+u.WriteBytes > 0 {
				break
			}
		}
	}
	return u
}

// blkioBytes adds up the Read and Write lines ("8:0 Read 4096") of a
// blkio io_service_bytes file.
func blkioBytes(path string) (read, write uint64) {
	b, err := readFile(path)
	if err != nil {
		return 0, 0
	}
	for line := range strings.Lines(string(b)) {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		var n uint64
		fmt.Sscan(f[2], &n)
		switch f[1] {
		case "Read":
			read += n
		case "Write":
			write += n
		}
	}
	return read, write
}
