package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/builder-dev/builder/executor/cgroup"
	"github.com/builder-dev/builder/internal/testutil"
	"github.com/builder-dev/builder/solver"
)

func TestResourceFlags(t *testing.T) {
	tests := []struct {
		f       resourceFlags
		want    cgroup.Limits
		wantErr string
	}{
		{resourceFlags{}, cgroup.Limits{}, ""},
		{resourceFlags{memory: "64m", memorySwap: "-1", cpus: 0.5, cpuShares: 512, pidsLimit: 64},
			cgroup.Limits{Memory: 64 << 20, MemorySwap: -1, CPUs: 0.5, CPUShares: 512, PidsLimit: 64}, ""},
		{resourceFlags{memory: "1g", memorySwap: "2g"}, cgroup.Limits{Memory: 1 << 30, MemorySwap: 2 << 30}, ""},
		{resourceFlags{memory: "lots"}, cgroup.Limits{}, "--memory lots"},
		{resourceFlags{memorySwap: "1g"}, cgroup.Limits{}, "needs --memory"},
		{resourceFlags{memory: "1m"}, cgroup.Limits{}, "minimum is 6 MiB"},
	}
	for _, tt := range tests {
		got, err := tt.f.limits()
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("%+v.limits() error = %v, want %q", tt.f, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("%+v.limits() = %+v, %v; want %+v", tt.f, got, err, tt.want)
		}
	}
}

func TestUsageSuffix(t *testing.T) {
	if got := usageSuffix(nil); got != "" {
		t.Errorf("usageSuffix(nil) = %q", got)
	}
	u := &solver.Usage{CPU: 1250e6, PeakMemory: 3 << 29, ReadBytes: 2048, WriteBytes: 10 << 20}
	if got, want := usageSuffix(u), " (cpu 1.2s, peak 1.5 GiB, read 2 KiB, wrote 10 MiB)"; got != want {
		t.Errorf("usageSuffix = %q, want %q", got, want)
	}
}

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
	if code == 0 || !strings.Contains(stderr, "Dockerfile:4: RUN head -c 200m") || !strings.Contains(stderr, "killed: out of memory (limit 64 MiB)") {
		t.Errorf("build over the limit exited %d:\n%s", code, stderr)
	}
}
