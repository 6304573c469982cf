package executor_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/builder-dev/builder/executor"
	"github.com/builder-dev/builder/executor/cgroup"
	"github.com/builder-dev/builder/internal/userns"
	"github.com/docker/go-units"
)

// cgroupSandbox is a busybox sandbox for the cgroup tests, which need a few
// more applets. It skips where no cgroup with limits can be made, after
// checking that asking for limits there fails with an error saying why.
func cgroupSandbox(t *testing.T) *sandbox {
	t.Helper()
	root := newBusyboxRootfs(t)
	for _, a := range []string{"tail", "seq"} {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", a)); err != nil && !errors.Is(err, os.ErrExist) {
			t.Fatal(err)
		}
	}
	s := newSandbox(t, root)
	g, err := cgroup.New(cgroup.Limits{Memory: 64 << 20})
	if err != nil {
		spec := s.spec("true")
		spec.Resources = cgroup.Limits{Memory: 64 << 20}
		_, _, rerr := run(t, spec)
		if rerr == nil || !strings.Contains(rerr.Error(), "resource limits need a cgroup") {
			t.Fatalf("Run with --memory where no cgroup can be made = %v, want an error saying limits need a cgroup", rerr)
		}
		if userns.Rootless() && !strings.Contains(rerr.Error(), "delegated cgroup v2") {
			t.Errorf("rootless Run with --memory = %v, want it to name the delegated cgroup v2 subtree", rerr)
		}
		// Without limits, the same sandbox runs as it always did.
		mustRun(t, s.spec("true"))
		t.Skipf("no cgroup with a memory limit can be made here: %v", err)
	}
	if err := g.Delete(); err != nil {
		t.Fatal(err)
	}
	return s
}

// ownCgroups lists the builder cgroups this process (pid) made that still
// exist, in every hierarchy this process is in, but for those of the inits
// started ahead for the next sandboxes.
func ownCgroups(t *testing.T, pid int) []string {
	t.Helper()
	warm := executor.WarmInitCgroups() // the next sandboxes', by design
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	var found []string
	for line := range strings.Lines(string(b)) {
		parts := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(parts) != 3 {
			continue
		}
		var roots []string
		if parts[1] == "" {
			roots = []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"}
		} else {
			for c := range strings.SplitSeq(parts[1], ",") {
				roots = append(roots, "/sys/fs/cgroup/"+strings.TrimPrefix(c, "name="))
			}
		}
		for _, r := range roots {
			m, _ := filepath.Glob(filepath.Join(r, parts[2], "builder-"+strconv.Itoa(pid)+"-*"))
			for _, g := range m {
				if pid != os.Getpid() || !warm[filepath.Base(g)] {
					found = append(found, g)
				}
			}
		}
	}
	return found
}

func TestCgroupOOMKill(t *testing.T) {
	s := cgroupSandbox(t)
	// busybox tail -c N keeps the last N bytes in memory.
	spec := s.spec("sh", "-c", "head -c 200m /dev/zero | tail -c 150m >/dev/null")
	spec.Resources = cgroup.Limits{Memory: 64 << 20}
	var usage cgroup.Usage
	spec.Usage = &usage
	_, stderr, err := run(t, spec)
	var oom *executor.OOMError
	if !errors.As(err, &oom) {
		t.Fatalf("Run(200 MB in 64 MiB) = %v (stderr %q), want an *OOMError", err, stderr)
	}
	if want := "killed: out of memory (limit 64MiB)"; err.Error() != want {
		t.Errorf("error = %q, want %q", err, want)
	}
	var ee *executor.ExitError
	if !errors.As(err, &ee) || ee.Code != 137 {
		t.Errorf("OOMError does not carry the exit 137 of the killed shell: %v", ee)
	}
	if usage.PeakMemory < 32<<20 || usage.PeakMemory > 64<<20 {
		t.Errorf("peak memory %d, want between 32 MiB and the 64 MiB limit", usage.PeakMemory)
	}
	if left := ownCgroups(t, os.Getpid()); len(left) != 0 {
		t.Errorf("cgroups left behind: %v", left)
	}
}

// TestCgroupMemoryLimitAllowsLess checks the limit is not a false alarm:
// 20 MB under 64 MiB runs.
func TestCgroupMemoryLimitAllowsLess(t *testing.T) {
	s := cgroupSandbox(t)
	spec := s.spec("sh", "-c", "head -c 20m /dev/zero | tail -c 20m | wc -c")
	spec.Resources = cgroup.Limits{Memory: 64 << 20}
	var usage cgroup.Usage
	spec.Usage = &usage
	if out := mustRun(t, spec); out != "20971520" {
		t.Errorf("output %q, want 20971520", out)
	}
	if usage.PeakMemory < 20<<20 {
		t.Errorf("peak memory %d, want at least the 20 MiB tail held", usage.PeakMemory)
	}
}

// TestCgroupPidsLimit runs a fork bomb (processes that stay) under a pids
// limit of 64: forking fails, the shell gives up, the sandbox ends.
// Without the limit it would make 10000 processes and wait 100 s.
func TestCgroupPidsLimit(t *testing.T) {
	s := cgroupSandbox(t)
	spec := s.spec("sh", "-c", "for i in $(seq 10000); do sleep 100 & done; wait")
	spec.Resources = cgroup.Limits{PidsLimit: 64}
	start := time.Now()
	_, stderr, err := run(t, spec)
	var ee *executor.ExitError
	if !errors.As(err, &ee) || !strings.Contains(stderr, "can't fork") {
		t.Fatalf("fork bomb under --pids-limit 64 = %v, stderr %q; want a failed exit after \"can't fork\"", err, stderr)
	}
	if d := time.Since(start); d > 30*time.Second {
		t.Errorf("fork bomb took %v to end", d)
	}
	if left := ownCgroups(t, os.Getpid()); len(left) != 0 {
		t.Errorf("cgroups left behind: %v", left)
	}
}

// TestCgroupUsage checks that a step's CPU time and peak memory come back.
func TestCgroupUsage(t *testing.T) {
	s := cgroupSandbox(t)
	spec := s.spec("sh", "-c", "i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; head -c 30m /dev/zero | tail -c 30m >/dev/null")
	var usage cgroup.Usage
	spec.Usage = &usage
	mustRun(t, spec)
	if usage.CPU < 50*time.Millisecond {
		t.Errorf("CPU time %v, want the busy loop's (at least 50ms)", usage.CPU)
	}
	if usage.PeakMemory < 30<<20 {
		t.Errorf("peak memory %s, want at least 30 MiB", units.BytesSize(float64(usage.PeakMemory)))
	}
	if left := ownCgroups(t, os.Getpid()); len(left) != 0 {
		t.Errorf("cgroups left behind: %v", left)
	}
}

// TestCgroupRemovedAfterFailureAndCancel checks that neither a failed
// process nor a cancelled one leaves its cgroup.
func TestCgroupRemovedAfterFailureAndCancel(t *testing.T) {
	s := cgroupSandbox(t)
	if _, _, err := run(t, s.spec("false")); err == nil {
		t.Fatal("false succeeded")
	}
	ctx, cancel := context.WithTimeout(t.Context(), 300*time.Millisecond)
	defer cancel()
	err := executor.Run(ctx, s.spec("sh", "-c", "sleep 100 & sleep 100"))
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("Run after the deadline = %v", err)
	}
	if left := ownCgroups(t, os.Getpid()); len(left) != 0 {
		t.Errorf("cgroups left behind: %v", left)
	}
}

// TestCgroupStaleRemoved SIGKILLs a process running a sandbox, so that it
// cannot remove its cgroup, and checks that the next process to run a
// sandbox removes it.
func TestCgroupStaleRemoved(t *testing.T) {
	s := cgroupSandbox(t)
	helper := func(args ...string) *exec.Cmd {
		specJSON, err := json.Marshal(s.spec(args...))
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(os.Args[0])
		cmd.Env = append(os.Environ(), helperSpecEnv+"="+string(specJSON))
		return cmd
	}
	killed := helper("sleep", "100")
	if err := killed.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(ownCgroups(t, killed.Process.Pid)) == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if len(ownCgroups(t, killed.Process.Pid)) == 0 {
		killed.Process.Kill()
		killed.Wait()
		t.Fatal("the helper's sandbox has no cgroup")
	}
	killed.Process.Signal(syscall.SIGKILL)
	killed.Wait()
	if len(ownCgroups(t, killed.Process.Pid)) == 0 {
		t.Fatal("the cgroup vanished by itself: nothing left to clean up")
	}
	if out, err := helper("true").CombinedOutput(); err != nil {
		t.Fatalf("next run: %v: %s", err, out)
	}
	if left := ownCgroups(t, killed.Process.Pid); len(left) != 0 {
		t.Errorf("the next run left the killed process's cgroups: %v", left)
	}
}

// cpuLog is a Stdout that takes CPU readers, as the solver's step log
// does, and reads the current one at each write.
type cpuLog struct {
	readers []func() time.Duration
	atWrite []time.Duration
}

func (l *cpuLog) ReportCPU(used func() time.Duration) { l.readers = append(l.readers, used) }

func (l *cpuLog) Write(p []byte) (int, error) {
	if len(l.readers) > 0 {
		l.atWrite = append(l.atWrite, l.readers[len(l.readers)-1]())
	}
	return len(p), nil
}

// TestCgroupCPUReporter checks the readers Run hands the step's log: the
// sandbox's CPU time while it runs, then one CPU of wall time, as its
// cgroup (whose reader then reads 0) is gone.
func TestCgroupCPUReporter(t *testing.T) {
	s := cgroupSandbox(t)
	spec := s.spec("sh", "-c", "i=0; while [ $i -lt 100000 ]; do i=$((i+1)); done; echo done")
	var log cpuLog
	spec.Stdout = &log
	if err := executor.Run(context.Background(), spec); err != nil {
		t.Fatal(err)
	}
	if len(log.readers) != 2 {
		t.Fatalf("Run handed %d CPU readers, want 2 (the cgroup's, then the ended step's)", len(log.readers))
	}
	if len(log.atWrite) != 1 || log.atWrite[0] < 20*time.Millisecond {
		t.Errorf("the cgroup's reader at the step's output read %v, want the busy loop's CPU time", log.atWrite)
	}
	end := log.readers[1]
	a := end()
	time.Sleep(50 * time.Millisecond)
	if d := end() - a; d < 50*time.Millisecond || d > 5*time.Second {
		t.Errorf("the ended step's reader grew %v over 50ms of wall time, want one CPU's worth", d)
	}
}
