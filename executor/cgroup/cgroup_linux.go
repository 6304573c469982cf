package cgroup

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/containerd/cgroups/v3"
	"github.com/moby/sys/userns"
	"golang.org/x/sys/unix"
)

// namePrefix starts the name of every cgroup builder makes; removeStale
// looks for it.
const namePrefix = "builder-"

// unifiedMount is where a pure cgroup v2 host mounts its hierarchy.
const unifiedMount = "/sys/fs/cgroup"

var (
	seq       atomic.Uint64
	staleOnce sync.Once
	// noCgroups remembers that no cgroup could be made here, so that
	// steps without limits do not try again each time.
	noCgroups atomic.Bool
)

// Group is one sandbox's cgroup: a directory in each v1 hierarchy builder
// uses, or one in the v2 hierarchy.
type Group struct {
	// Name is the directory's name, beneath builder's own cgroup.
	Name   string
	limits Limits
	v1     *v1Group
	v2     *v2Group
}

// ErrUnavailable is wrapped by New's error when no cgroup could be made
// here (no writable hierarchy, or controllers not delegated to builder).
var ErrUnavailable = errors.New("no writable cgroup")

// New makes a cgroup for one sandbox beneath the cgroup this process runs
// in, with limits l. It returns a nil Group and no error when none can be
// made and l asks for no limit (rootless without delegation, a read-only
// cgroupfs): the sandbox then runs as it did before cgroups. The first call
// also removes the cgroups that killed builder processes left.
func New(l Limits) (*Group, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	if !l.Requested() && noCgroups.Load() {
		return nil, nil
	}
	staleOnce.Do(func() { removeStale() })
	name := namePrefix + strconv.Itoa(os.Getpid()) + "-" + strconv.FormatUint(seq.Add(1), 10)
	g := &Group{Name: name, limits: l}
	var err error
	switch cgroups.Mode() {
	case cgroups.Unified:
		g.v2, err = newV2(unifiedMount, name, l)
	case cgroups.Legacy, cgroups.Hybrid:
		// Hybrid hosts bind every controller to v1; the v2 hierarchy
		// beside them has none, so limits and usage live in v1.
		g.v1, err = newV1(name, l)
	default:
		err = fmt.Errorf("%w: no cgroup hierarchy is mounted at %s", ErrUnavailable, unifiedMount)
	}
	if err == nil {
		return g, nil
	}
	if !l.Requested() && unavailable(err) {
		noCgroups.Store(true)
		return nil, nil
	}
	if unavailable(err) {
		return nil, fmt.Errorf("resource limits need a cgroup: %w%s", err, hint())
	}
	return nil, fmt.Errorf("making cgroup %s: %w", name, err)
}

// unavailable says whether err means this process may not make cgroups
// here, as opposed to a failure worth reporting.
func unavailable(err error) bool {
	return errors.Is(err, ErrUnavailable) || errors.Is(err, fs.ErrPermission) ||
		errors.Is(err, syscall.EROFS) || errors.Is(err, syscall.EPERM)
}

// hint says what to change when limits were asked for and no cgroup could
// be made.
func hint() string {
	if userns.RunningInUserNS() || os.Geteuid() != 0 {
		return "; as an unprivileged user builder needs a delegated cgroup v2 subtree, " +
			"e.g. run it with `systemd-run --user --scope -p Delegate=yes builder ...`, " +
			"or build without --memory, --memory-swap, --cpus, --cpu-shares and --pids-limit"
	}
	return ""
}

// Add puts the process pid (and its threads) into the group.
func (g *Group) Add(pid int) error {
	var err error
	if g.v1 != nil {
		err = g.v1.add(pid)
	} else {
		err = g.v2.m.AddProc(uint64(pid))
	}
	if err != nil {
		return fmt.Errorf("moving pid %d into cgroup %s: %w", pid, g.Name, err)
	}
	return nil
}

// Kill sends SIGKILL to every process in the group: cgroup.kill on v2,
// freeze, kill every pid and thaw on v1.
func (g *Group) Kill() error {
	if g.v1 != nil {
		return g.v1.kill()
	}
	return g.v2.m.Kill()
}

// OOMKilled says whether the kernel killed a process of the group because
// it reached its memory limit.
func (g *Group) OOMKilled() bool {
	if g.v1 != nil {
		return g.v1.oomKills() > 0
	}
	return g.v2.oomKills() > 0
}

// MemoryLimit is the group's memory limit in bytes, 0 if none.
func (g *Group) MemoryLimit() int64 { return g.limits.Memory }

// Usage reads what the group's processes used so far.
func (g *Group) Usage() Usage {
	if g.v1 != nil {
		return g.v1.usage()
	}
	return g.v2.usage()
}

// CPU reads the user plus system CPU time the group's processes used so
// far, and nothing else: it is read often while a step runs (one file,
// cpu.stat on v2, cpuacct.usage on v1).
func (g *Group) CPU() time.Duration {
	if g.v1 != nil {
		return g.v1.cpu()
	}
	return time.Duration(readKey(g.v2.dir+"/cpu.stat", "usage_usec")) * time.Microsecond
}

// Delete removes the group, killing whatever still runs in it first (the
// sandbox's pid namespace is gone by then, so normally nothing does).
func (g *Group) Delete() error {
	var err error
	for range 50 {
		if g.v1 != nil {
			err = g.v1.rmdir()
		} else if err = unix.Rmdir(g.v2.dir); err == unix.ENOENT {
			err = nil
		}
		if err == nil {
			return nil
		}
		g.Kill()
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("removing cgroup %s: %w", g.Name, err)
}

// readFile reads a small cgroupfs file with plain open, read and close:
// os.ReadFile also stats the file and registers it with the runtime's
// poller, three times the system calls, for each of the files read at the
// end of every step.
func readFile(path string) ([]byte, error) {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	b := make([]byte, 0, 512)
	for {
		n, err := unix.Read(fd, b[len(b):cap(b)])
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			return b, nil
		}
		b = b[:len(b)+n]
		if len(b) == cap(b) {
			b = append(b, 0)[:len(b)]
		}
	}
}

// writeFile writes data to an existing cgroupfs file in one write, as
// readFile reads.
func writeFile(path string, data []byte) error {
	fd, err := unix.Open(path, unix.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: path, Err: err}
	}
	defer unix.Close(fd)
	for {
		_, err = unix.Write(fd, data)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		return &os.PathError{Op: "write", Path: path, Err: err}
	}
	return nil
}

// readUint reads a file holding one number.
func readUint(path string) uint64 {
	b, err := readFile(path)
	if err != nil {
		return 0
	}
	n, _ := strconv.ParseUint(strings.TrimSpace(string(b)), 10, 64)
	return n
}

// readKey reads the number after key in a "key value" per line file.
func readKey(path, key string) uint64 {
	b, err := readFile(path)
	if err != nil {
		return 0
	}
	for line := range strings.Lines(string(b)) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), " "); ok && k == key {
			n, _ := strconv.ParseUint(v, 10, 64)
			return n
		}
	}
	return 0
}
