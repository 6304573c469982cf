package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/builder-dev/builder/executor/cgroup"
	"github.com/builder-dev/builder/internal/testutil"
)

// TestCLIResources builds with the real binary under --memory: the plain
// progress shows each RUN step's usage, --metadata-file lists it under
// builder.steps, and an allocation over the limit fails the build with
// the OOM message at its line.
func TestCLIResources(t *testing.T) {
	testutil.RequiresRoot(t)
	c := cli{t: t, bin: builderBinary(t), root: t.TempDir()}
	bb, err := os.ReadFile(testutil.BusyboxPath)
	if err != nil {
		t.Fatalf("reading busybox (apt-get install busybox-static): %v", err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "busybox"), bb, 0o755)
	df := "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"--install\", \"-s\", \"/bin\"]\n" +
		"RUN head -c 30m /dev/zero | tail -c 30m >/dev/null\n"
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644)
	if g, err := cgroup.New(cgroup.Limits{Memory: 64 << 20}); err != nil {
		// Rootless without delegation: asking for a limit fails, and says why.
		_, stderr, code := c.run("build", "--memory", "64m", dir)
		if code == 0 || !strings.Contains(stderr, "resource limits need a cgroup") {
			t.Errorf("build --memory where no cgroup can be made exited %d:\n%s", code, stderr)
		}
		t.Skipf("no cgroup can be made here: %v", err)
	} else {
		g.Delete()
	}
	md := filepath.Join(t.TempDir(), "md.json")
	_, stderr, code := c.run("build", "--memory", "64m", "--progress", "plain", "--metadata-file", md, dir)
	if code != 0 {
		t.Fatalf("build exited %d:\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "#4 DONE ") || !strings.Contains(stderr, "MiB)\n") || !strings.Contains(stderr, "(cpu ") {
		t.Errorf("plain progress lacks the RUN step's usage:\n%s", stderr)
	}
	var meta struct {
		Steps []struct {
			Name       string  `json:"name"`
			CPU        float64 `json:"cpu"`
			PeakMemory uint64  `json:"peakMemory"`
		} `json:"builder.steps"`
	}
	b, err := os.ReadFile(md)
	if err == nil {
		err = json.Unmarshal(b, &meta)
	}
	if err != nil || len(meta.Steps) != 2 || meta.Steps[1].PeakMemory < 30<<20 {
		t.Errorf("metadata builder.steps = %+v (%v), want two RUN steps, the second with a 30 MiB peak:\n%s", meta.Steps, err, b)
	}

	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(strings.Replace(df, "head -c 30m /dev/zero | tail -c 30m", "head -c 200m /dev/zero | tail -c 150m", 1)), 0o644)
	_, stderr, code = c.run("build", "--memory", "64m", "--progress", "plain", dir)
	if code == 0 || !strings.Contains(stderr, "Dockerfile:4: RUN head -c 200m") || !strings.Contains(stderr, "killed: out of memory (limit 64MiB)") {
		t.Errorf("build over the limit exited %d:\n%s", code, stderr)
	}
}

// cgroupsOf lists the cgroups builder process pid made (builder-PID-*)
// beneath this process's own cgroups.
func cgroupsOf(t *testing.T, pid int) []string {
	t.Helper()
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
		roots := []string{"/sys/fs/cgroup/unified", "/sys/fs/cgroup"}
		if parts[1] != "" {
			roots = nil
			for c := range strings.SplitSeq(parts[1], ",") {
				roots = append(roots, "/sys/fs/cgroup/"+strings.TrimPrefix(c, "name="))
			}
		}
		for _, r := range roots {
			m, _ := filepath.Glob(filepath.Join(r, parts[2], "builder-"+strconv.Itoa(pid)+"-*"))
			found = append(found, m...)
		}
	}
	return found
}

// TestKilledBuildLeavesNoCgroup SIGKILLs builder while a RUN step runs, so
// that it cannot remove the step's cgroup, and checks that the next build
// removes it.
func TestKilledBuildLeavesNoCgroup(t *testing.T) {
	testutil.RequiresRoot(t)
	if g, err := cgroup.New(cgroup.Limits{}); err != nil || g == nil {
		t.Skipf("no cgroup can be made here: %v", err)
	} else {
		g.Delete()
	}
	c := cli{t: t, bin: builderBinary(t), root: t.TempDir()}
	dir := t.TempDir()
	bb, err := os.ReadFile(testutil.BusyboxPath)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "busybox"), bb, 0o755)
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"sleep\", \"100\"]\n"), 0o644)
	cmd := exec.Command(c.bin, "--root", c.root, "build", "--progress", "plain", dir)
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for len(cgroupsOf(t, cmd.Process.Pid)) == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	cmd.Process.Kill()
	cmd.Wait()
	if len(cgroupsOf(t, cmd.Process.Pid)) == 0 {
		t.Fatal("the killed build's RUN step had no cgroup, or it vanished by itself")
	}
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"true\"]\n"), 0o644)
	if _, stderr, code := c.run("build", dir); code != 0 {
		t.Fatalf("build after the kill exited %d:\n%s", code, stderr)
	}
	if left := cgroupsOf(t, cmd.Process.Pid); len(left) != 0 {
		t.Errorf("the killed build's cgroups remain after the next build: %v", left)
	}
}
