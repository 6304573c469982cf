package cgroup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/containerd/cgroups/v3/cgroup2"
	"golang.org/x/sys/unix"
)

// v2Group is a sandbox's cgroup on a cgroup v2 host.
type v2Group struct {
	m   *cgroup2.Manager
	dir string
}

// v2Wanted are the controllers a sandbox's cgroup gets where builder's
// own cgroup may hand them down: for limits and for usage (memory.peak,
// io.stat). cpu.stat and cgroup.kill need none.
var v2Wanted = []string{"memory", "pids", "cpu", "io"}

// newV2 makes mount/OWN/name, where OWN is this process's cgroup. It
// writes nothing above OWN: controllers are enabled in OWN's
// cgroup.subtree_control only, which the kernel allows when OWN holds no
// process (a delegated subtree, or the root of a cgroup namespace).
func newV2(mount, name string, l Limits) (*v2Group, error) {
	own, err := v2OwnPath()
	if err != nil {
		return nil, fmt.Errorf("%w: reading /proc/self/cgroup: %w", ErrUnavailable, err)
	}
	ownDir := filepath.Join(mount, own)
	enabled, err := delegate(ownDir, l.v2Needs())
	if err != nil {
		return nil, err
	}
	group := filepath.Join(own, name)
	dir := filepath.Join(mount, group)
	if err := os.Mkdir(dir, 0o755); err != nil {
		return nil, err
	}
	m, err := cgroup2.Load(group, cgroup2.WithMountpoint(mount))
	if err == nil {
		err = m.Update(l.v2Resources(dir, enabled))
	}
	if err != nil {
		os.Remove(dir)
		return nil, fmt.Errorf("setting the limits of %s: %w", dir, err)
	}
	return &v2Group{m: m, dir: dir}, nil
}

// v2Needs are the controllers the limits that were asked for need.
func (l Limits) v2Needs() []string {
	var n []string
	if l.Memory > 0 {
		n = append(n, "memory")
	}
	if l.CPUs > 0 || l.CPUShares > 0 {
		n = append(n, "cpu")
	}
	if l.PidsLimit > 0 {
		n = append(n, "pids")
	}
	return n
}

// delegate enables the wanted controllers that ownDir offers for its
// children and returns those enabled. A needed one that cannot be enabled
// is an error saying why.
func delegate(ownDir string, needed []string) ([]string, error) {
	avail := fields(filepath.Join(ownDir, "cgroup.controllers"))
	enabled := fields(filepath.Join(ownDir, "cgroup.subtree_control"))
	var add []string
	for _, c := range v2Wanted {
		if slices.Contains(avail, c) && !slices.Contains(enabled, c) {
			add = append(add, "+"+c)
		}
	}
	var werr error
	if len(add) > 0 {
		control := filepath.Join(ownDir, "cgroup.subtree_control")
		werr = os.WriteFile(control, []byte(strings.Join(add, " ")), 0)
		if errors.Is(werr, unix.EBUSY) {
			if werr = moveToLeaf(ownDir); werr == nil {
				werr = os.WriteFile(control, []byte(strings.Join(add, " ")), 0)
			}
		}
		enabled = fields(control)
	}
	for _, c := range needed {
		if slices.Contains(enabled, c) {
			continue
		}
		switch {
		case !slices.Contains(avail, c):
			return nil, fmt.Errorf("%w: the cgroup v2 %s controller is not delegated to builder's cgroup %s", ErrUnavailable, c, ownDir)
		case werr != nil:
			return nil, fmt.Errorf("%w: enabling the %s controller for the children of builder's cgroup %s: %w "+
				"(a cgroup that holds other processes cannot hand controllers down: run builder in a cgroup of its own)", ErrUnavailable, c, ownDir, werr)
		}
	}
	return enabled, nil
}

// leafName is where moveToLeaf puts builder's own processes. It does not
// match "builder-PID-N", so removeStale leaves it to removeStaleLeaf.
const leafName = "builder-leaf"

// v2Own is this process's cgroup, read once: once moveToLeaf has moved
// builder into OWN/builder-leaf, /proc/self/cgroup names the leaf, and the
// sandboxes' groups must still go beside it.
var v2Own struct {
	once sync.Once
	path string
	err  error
}

func v2OwnPath() (string, error) {
	v2Own.once.Do(func() { v2Own.path, v2Own.err = cgroup2.NestedGroupPath("") })
	return v2Own.path, v2Own.err
}

// moveToLeaf moves the processes of ownDir into ownDir/builder-leaf, so
// that ownDir may hand controllers down to its children: the kernel lets
// only a cgroup without processes do that ("no internal processes").
// BuildKit and Docker-in-Docker do the same in a delegated cgroup. It
// refuses when ownDir holds anything but builder (this binary: the
// rootless parent and its re-executed child), which is not ours to move.
func moveToLeaf(ownDir string) error {
	self, err := os.Readlink("/proc/self/exe")
	if err != nil {
		return err
	}
	pids := fields(filepath.Join(ownDir, "cgroup.procs"))
	for _, p := range pids {
		if exe, err := os.Readlink("/proc/" + p + "/exe"); err != nil || exe != self {
			return fmt.Errorf("%w: it also holds process %s, which is not builder", unix.EBUSY, p)
		}
	}
	leaf := filepath.Join(ownDir, leafName)
	if err := os.Mkdir(leaf, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	for _, p := range pids {
		err := os.WriteFile(filepath.Join(leaf, "cgroup.procs"), []byte(p), 0)
		if err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("moving builder's process %s to %s: %w", p, leaf, err)
		}
	}
	return nil
}

func fields(path string) []string {
	b, _ := os.ReadFile(path)
	return strings.Fields(string(b))
}

// v2Resources turns l into what cgroup2 writes, for the controllers that
// are enabled. Swap is limited only where the kernel accounts for it
// (memory.swap.max exists), unless asked for; unlimited is the default.
func (l Limits) v2Resources(dir string, enabled []string) *cgroup2.Resources {
	res := &cgroup2.Resources{}
	if l.Memory > 0 {
		mem := l.Memory
		res.Memory = &cgroup2.Memory{Max: &mem}
		_, err := os.Stat(filepath.Join(dir, "memory.swap.max"))
		if total := l.memorySwap(); total > 0 && (l.MemorySwap != 0 || err == nil) {
			swap := total - l.Memory
			res.Memory.Swap = &swap
		}
	}
	if l.CPUs > 0 || l.CPUShares > 0 {
		res.CPU = &cgroup2.CPU{}
		if l.CPUs > 0 {
			quota, period := l.cpuQuota(), uint64(cpuPeriod)
			res.CPU.Max = cgroup2.NewCPUMax(&quota, &period)
		}
		if l.CPUShares > 0 {
			w := cgroup2.ConvertCPUSharesToCgroupV2Value(l.CPUShares)
			res.CPU.Weight = &w
		}
	}
	if n := l.pids(); n > 0 && slices.Contains(enabled, "pids") {
		res.Pids = &cgroup2.Pids{Max: n}
	}
	return res
}

func (g *v2Group) oomKills() uint64 {
	return readKey(filepath.Join(g.dir, "memory.events"), "oom_kill")
}

func (g *v2Group) usage() Usage {
	var u Usage
	st, err := g.m.StatFiltered(cgroup2.StatCPU | cgroup2.StatMemory | cgroup2.StatIO)
	if err != nil {
		return u
	}
	if st.CPU != nil {
		u.CPU = time.Duration(st.CPU.UsageUsec) * time.Microsecond
	}
	if st.Memory != nil {
		u.PeakMemory = st.Memory.MaxUsage
	}
	if st.Io != nil {
		for _, e := range st.Io.Usage {
			u.ReadBytes += e.Rbytes
			u.WriteBytes += e.Wbytes
		}
	}
	return u
}
