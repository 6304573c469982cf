package cgroup

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// groupDirs are g's directories, by controller ("" on v2).
func groupDirs(g *Group) map[string]string {
	dirs := map[string]string{}
	if g.v2 != nil {
		dirs[""] = g.v2.dir
	} else {
		for n, d := range g.v1.dirs {
			dirs[string(n)] = d
		}
	}
	return dirs
}

func newOrSkip(t *testing.T, l Limits) *Group {
	t.Helper()
	g, err := New(l)
	if err != nil || g == nil {
		t.Skipf("no cgroup can be made here: %v", err)
	}
	return g
}

// TestNewBeneathOwnCgroup checks that a group lives beneath this process's
// own cgroup in each hierarchy, holds its limits (the default pids limit
// among them), and is gone after Delete.
func TestNewBeneathOwnCgroup(t *testing.T) {
	g := newOrSkip(t, Limits{Memory: 64 << 20, CPUs: 0.5})
	defer g.Delete()
	own, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	dirs := groupDirs(g)
	for ctl, d := range dirs {
		if filepath.Base(d) != g.Name || !strings.HasPrefix(g.Name, "builder-"+strconv.Itoa(os.Getpid())+"-") {
			t.Errorf("%s: group dir %s, want builder-PID-N", ctl, d)
		}
		// The parent must be this process's cgroup in that hierarchy.
		if want := ownDir(t, ctl, string(own)); filepath.Dir(d) != want {
			t.Errorf("%s: %s is not right beneath this process's cgroup %s", ctl, d, want)
		}
	}
	check := func(file, want string) {
		t.Helper()
		for _, d := range dirs {
			if b, err := os.ReadFile(filepath.Join(d, file)); err == nil {
				if got := strings.TrimSpace(string(b)); got != want {
					t.Errorf("%s = %q, want %q", file, got, want)
				}
				return
			}
		}
		t.Errorf("no %s in %v", file, dirs)
	}
	if g.v1 != nil {
		check("memory.limit_in_bytes", strconv.Itoa(64<<20))
		check("cpu.cfs_quota_us", "50000")
		check("pids.max", strconv.Itoa(DefaultPidsLimit))
		if _, err := os.Stat(filepath.Join(dirs["memory"], "memory.memsw.limit_in_bytes")); err == nil {
			// Docker's default: memory plus swap is twice --memory.
			check("memory.memsw.limit_in_bytes", strconv.Itoa(128<<20))
		}
	} else {
		check("memory.max", strconv.Itoa(64<<20))
		check("cpu.max", "50000 100000")
	}
	if err := g.Delete(); err != nil {
		t.Fatal(err)
	}
	for _, d := range dirs {
		if _, err := os.Stat(d); !os.IsNotExist(err) {
			t.Errorf("%s still exists after Delete (%v)", d, err)
		}
	}
}

// TestStale makes a group named after a builder that no longer runs, with
// a process in it, and checks that removeStale leaves it while the process
// runs (it may be another pid namespace's), removes it once the process
// has gone, and leaves a live builder's group alone.
func TestStale(t *testing.T) {
	live := newOrSkip(t, Limits{})
	defer live.Delete()
	gone := exec.Command("true")
	if err := gone.Run(); err != nil {
		t.Fatal(err)
	}
	name := namePrefix + strconv.Itoa(gone.Process.Pid) + "-1"
	var stale *Group
	if live.v2 != nil {
		s, err := newV2(unifiedMount, name, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		stale = &Group{Name: name, v2: s}
	} else {
		s, err := newV1(name, Limits{})
		if err != nil {
			t.Fatal(err)
		}
		stale = &Group{Name: name, v1: s}
	}
	defer stale.Delete()
	sleeper := exec.Command("sleep", "100")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer sleeper.Process.Kill()
	if err := stale.Add(sleeper.Process.Pid); err != nil {
		t.Fatal(err)
	}
	exists := func(g *Group) bool {
		for _, d := range groupDirs(g) {
			if _, err := os.Stat(d); err == nil {
				return true
			}
		}
		return false
	}
	removeStale()
	if !exists(stale) {
		t.Fatal("removeStale removed a group that holds a process")
	}
	if err := stale.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := sleeper.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("the process in the group ended with %v, want killed by Kill", err)
	}
	removeStale()
	if exists(stale) {
		t.Errorf("stale group %v still exists", groupDirs(stale))
	}
	if !exists(live) {
		t.Errorf("live group %v was removed", groupDirs(live))
	}
}

// ownDir is this process's cgroup directory for controller ctl ("": v2),
// from /proc/self/cgroup (own) and where the hierarchy is mounted.
func ownDir(t *testing.T, ctl, own string) string {
	t.Helper()
	for line := range strings.Lines(own) {
		parts := strings.SplitN(strings.TrimSpace(line), ":", 3)
		if len(parts) != 3 {
			continue
		}
		if ctl == "" && parts[0] == "0" {
			return filepath.Join(unifiedMount, parts[2])
		}
		if ctl == "" || !slices.Contains(strings.Split(parts[1], ","), ctl) {
			continue
		}
		subsystems, err := v1Hierarchy()
		if err != nil {
			t.Fatal(err)
		}
		for _, s := range subsystems {
			if string(s.Name()) == ctl {
				return s.(pather).Path(parts[2])
			}
		}
	}
	t.Fatalf("no %q in /proc/self/cgroup", ctl)
	return ""
}

// TestV2 runs the cgroup v2 code on the hybrid host's v2 hierarchy
// (/sys/fs/cgroup/unified), which has no controllers: a group there still
// holds a process, accounts its CPU time, is killed as a whole with
// cgroup.kill and removed; a limit that needs a controller the hierarchy
// does not delegate fails, saying so.
func TestV2(t *testing.T) {
	const mount = "/sys/fs/cgroup/unified"
	var st unix.Statfs_t
	if err := unix.Statfs(mount, &st); err != nil || st.Type != unix.CGROUP2_SUPER_MAGIC {
		t.Skipf("no cgroup v2 hierarchy at %s beside v1 (%v)", mount, err)
	}
	if avail := fields(filepath.Join(mount, "cgroup.controllers")); slices.Contains(avail, "memory") {
		t.Skipf("%s has controllers: the hybrid case this test is for does not apply", mount)
	}
	name := namePrefix + strconv.Itoa(os.Getpid()) + "-v2test"
	if _, err := newV2(mount, name, Limits{Memory: 64 << 20}); err == nil || !strings.Contains(err.Error(), "memory controller is not delegated") {
		t.Errorf("newV2 with a memory limit and no memory controller = %v", err)
	}
	v2g, err := newV2(mount, name, Limits{})
	if err != nil {
		if unavailable(err) {
			t.Skipf("cannot make a group in %s: %v", mount, err)
		}
		t.Fatal(err)
	}
	g := &Group{Name: name, v2: v2g}
	defer g.Delete()
	busy := exec.Command("sh", "-c", "while :; do :; done")
	if err := busy.Start(); err != nil {
		t.Fatal(err)
	}
	if err := g.Add(busy.Process.Pid); err != nil {
		busy.Process.Kill()
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for g.CPU() < 20*time.Millisecond && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if u, cpu := g.Usage(), g.CPU(); u.CPU < 20*time.Millisecond || cpu < 20*time.Millisecond || cpu < u.CPU {
		t.Errorf("usage %+v, CPU %v; want the busy loop's CPU time, CPU read after Usage", u, cpu)
	}
	if err := g.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := busy.Wait(); err == nil || !strings.Contains(err.Error(), "killed") {
		t.Errorf("the process in the group ended with %v, want killed", err)
	}
	if err := g.Delete(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(v2g.dir); !os.IsNotExist(err) {
		t.Errorf("%s still exists after Delete (%v)", v2g.dir, err)
	}
}
