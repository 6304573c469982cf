package executor_test

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/builder-dev/builder/executor"
	"github.com/builder-dev/builder/executor/cgroup"
)

// TestWarmInit checks that a sandbox runs in the init started ahead while
// the one before ran, that its stdout and stderr still arrive, and that
// the init of the next one is started meanwhile.
func TestWarmInit(t *testing.T) {
	lower := newBusyboxRootfs(t)
	run := func(args ...string) (string, error) {
		spec := newSandbox(t, lower).spec(args...)
		var out strings.Builder
		spec.Stdout, spec.Stderr = &out, &out
		err := executor.Run(t.Context(), spec)
		return out.String(), err
	}
	if _, err := run("true"); err != nil {
		t.Fatal(err)
	}
	ahead := executor.WarmInitPID()
	if ahead == 0 {
		t.Fatal("no init started ahead after a Run")
	}
	if parent := runInit(t, run); parent != strconv.Itoa(ahead) {
		t.Errorf("the sandbox ran in process %q, not in the init started ahead (%d)", parent, ahead)
	}
	next := executor.WarmInitPID()
	if next == 0 || next == ahead {
		t.Fatalf("init started ahead after the second Run: %d (the first: %d)", next, ahead)
	}
	// At the end of a build it goes, with its cgroup.
	executor.DiscardWarm()
	if pid := executor.WarmInitPID(); pid != 0 || syscall.Kill(next, 0) != syscall.ESRCH {
		t.Errorf("after DiscardWarm: init started ahead %d, process %d still there", pid, next)
	}
	if left := ownCgroups(t, os.Getpid()); len(left) != 0 {
		t.Errorf("cgroups left behind: %v", left)
	}
}

// runInit runs a sandbox that prints to stdout and stderr and returns the
// host pid of the process it ran in (the init, which became its shell).
func runInit(t *testing.T, run func(args ...string) (string, error)) string {
	t.Helper()
	token := fmt.Sprintf("0.%06d", time.Now().UnixNano()%1e6)
	type result struct {
		out string
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := run("sh", "-c", "echo out; sleep "+token+"; echo err >&2")
		done <- result{out, err}
	}()
	// The sleep's parent is the shell, which the init became at execve
	// (not the last command: the shell forks it).
	var parent string
	for deadline := time.Now().Add(5 * time.Second); parent == "" && time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		for _, pid := range findProcs(t, "sleep\x00"+token) {
			parent = ppid(t, pid)
		}
	}
	r := <-done
	if r.err != nil || r.out != "out\nerr\n" {
		t.Fatalf("Run = %q, %v; want %q", r.out, r.err, "out\nerr\n")
	}
	return parent
}

// TestPrepare checks that Prepare starts the init of a sandbox like the
// one it is given, which the next Run of such a sandbox then runs in.
func TestPrepare(t *testing.T) {
	lower := newBusyboxRootfs(t)
	executor.DiscardWarm()
	executor.Prepare(executor.Spec{Network: executor.NetworkNone})
	var ahead int
	for deadline := time.Now().Add(5 * time.Second); ahead == 0 && time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
		ahead = executor.WarmInitPID()
	}
	if ahead == 0 {
		t.Fatal("Prepare started no init")
	}
	run := func(args ...string) (string, error) {
		spec := newSandbox(t, lower).spec(args...)
		spec.Network = executor.NetworkNone
		var out strings.Builder
		spec.Stdout, spec.Stderr = &out, &out
		err := executor.Run(t.Context(), spec)
		return out.String(), err
	}
	if parent := runInit(t, run); parent != strconv.Itoa(ahead) {
		t.Errorf("the sandbox ran in process %q, not in the init Prepare started (%d)", parent, ahead)
	}
	executor.DiscardWarm()
}

// ppid returns the parent pid of pid, or "" if it is gone.
func ppid(t *testing.T, pid string) string {
	b, err := os.ReadFile("/proc/" + pid + "/status")
	if err != nil {
		return ""
	}
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, "PPid:"); ok {
			return strings.TrimSpace(v)
		}
	}
	t.Fatalf("no PPid in /proc/%s/status", pid)
	return ""
}

// TestWarmAlternating runs consecutive sandboxes whose seccomp program
// (sync elided or not), network (none or the host's) and limits alternate,
// each with one writer for stdout and stderr as a build's steps have (so
// that they run in inits started ahead), and checks that each got its own.
func TestWarmAlternating(t *testing.T) {
	lower := newBusyboxRootfs(t)
	limits := cgroup.Limits{PidsLimit: 16} // room for /probe's threads
	if g, err := cgroup.New(limits); err != nil {
		t.Skipf("no cgroup can be made here: %v", err)
	} else if err := g.Delete(); err != nil {
		t.Fatal(err)
	}
	executor.DiscardWarm()
	defer executor.DiscardWarm()
	// Twenty sleeps are over the limit, not /probe's threads.
	script := `/probe; tail -n +3 /proc/net/dev | cut -d: -f1 | tr -d ' ' | sort | tr '\n' ' '; echo
(for i in $(seq 20); do sleep 0.2 & done; wait) 2>/dev/null && echo pids free || echo pids limited`
	type step struct {
		elide   bool
		network string
		limited bool
	}
	steps := []step{
		{true, executor.NetworkNone, true}, {false, executor.NetworkHost, false},
		{true, executor.NetworkHost, true}, {false, executor.NetworkNone, false},
		{true, executor.NetworkNone, true}, {false, executor.NetworkHost, false},
		{false, executor.NetworkNone, true}, {true, executor.NetworkHost, false},
	}
	var warm int
	for i, st := range steps {
		spec := newSandbox(t, lower).spec("sh", "-c", script)
		spec.ElideSync, spec.Network = st.elide, st.network
		if st.limited {
			spec.Resources = limits
		}
		spec.Env = append(spec.Env, probeEnv+"=sync_closed")
		bindSelf(t, &spec)
		var out strings.Builder
		spec.Stdout, spec.Stderr = &out, &out
		if executor.WarmInitPID() != 0 {
			warm++
		}
		if err := executor.Run(t.Context(), spec); err != nil {
			t.Fatalf("step %d %+v: %v; output:\n%s", i, st, err, out.String())
		}
		lines := strings.Split(strings.TrimSpace(out.String()), "\n")
		if len(lines) != 3 {
			t.Fatalf("step %d %+v printed %q", i, st, lines)
		}
		want := []string{"sync_closed EBADF EBADF EBADF EBADF", "", "pids free"}
		if st.elide {
			want[0] = "sync_closed ok ok ok ok"
		}
		if st.limited {
			want[2] = "pids limited"
		}
		if ifs := strings.Fields(lines[1]); st.network == executor.NetworkNone && (len(ifs) != 1 || ifs[0] != "lo") ||
			st.network == executor.NetworkHost && len(ifs) < 2 {
			t.Errorf("step %d %+v: interfaces %q", i, st, ifs)
		}
		if lines[0] != want[0] || lines[2] != want[2] {
			t.Errorf("step %d %+v printed %q, want %q and %q", i, st, lines, want[0], want[2])
		}
	}
	if warm < len(steps)-1 {
		t.Errorf("%d of %d steps found an init started ahead", warm, len(steps))
	}
}
