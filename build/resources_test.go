package build_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/executor/cgroup"
	"github.com/builder-dev/builder/internal/testutil"
)

// leftCgroups lists the cgroups this process made (builder-PID-*) that
// still exist beneath its own, in every hierarchy.
func leftCgroups(t *testing.T) []string {
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
			m, _ := filepath.Glob(filepath.Join(r, parts[2], "builder-"+strconv.Itoa(os.Getpid())+"-*"))
			found = append(found, m...)
		}
	}
	return found
}

// TestResourceLimits builds Dockerfiles under --memory and --pids-limit:
// an allocation over the limit is reported as an OOM kill at its line, a
// fork bomb ends and fails the build, a step's usage comes back with the
// result, limits do not enter the cache key, and no cgroup is left.
// Where no cgroup can be made (rootless without delegation), asking for
// limits fails with the reason and a build without them works.
func TestResourceLimits(t *testing.T) {
	reg := testutil.InProcessRegistry(t)
	base := reg + "/busybox:1"
	testutil.PushImage(t, testutil.BusyboxImage(t), base)
	root := t.TempDir()
	st := openState(t, root)
	ctxDir := writeContext(t, nil)
	mem64 := cgroup.Limits{Memory: 64 << 20}
	build1 := func(df string, l cgroup.Limits) (*build.Result, error) {
		return st.Build(t.Context(), build.Options{ContextDir: ctxDir, Dockerfile: []byte("FROM " + base + "\n" + df), Resources: l})
	}

	if g, err := cgroup.New(mem64); err != nil {
		_, berr := build1("RUN true\n", mem64)
		if berr == nil || !strings.Contains(berr.Error(), "resource limits need a cgroup") {
			t.Fatalf("build with --memory where no cgroup can be made = %v, want the reason", berr)
		}
		if _, err := build1("RUN true\n", cgroup.Limits{}); err != nil {
			t.Fatalf("build without limits where no cgroup can be made: %v", err)
		}
		t.Skipf("no cgroup can be made here: %v", err)
	} else if err := g.Delete(); err != nil {
		t.Fatal(err)
	}

	t.Run("oom", func(t *testing.T) {
		_, err := build1("RUN echo ok\nRUN head -c 200m /dev/zero | tail -c 150m >/dev/null\n", mem64)
		if err == nil {
			t.Fatal("200 MB under --memory 64m succeeded")
		}
		for _, want := range []string{"Dockerfile:3: RUN head -c 200m", "killed: out of memory (limit 64MiB)"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error %q does not contain %q", err, want)
			}
		}
		checkNothingLeft(t, root)
	})

	t.Run("fork bomb", func(t *testing.T) {
		start := time.Now()
		_, err := build1("RUN for i in $(seq 10000); do sleep 100 & done; wait\n", cgroup.Limits{PidsLimit: 64})
		if err == nil || !strings.Contains(err.Error(), "Dockerfile:2") {
			t.Fatalf("fork bomb under --pids-limit 64 = %v, want a failure at Dockerfile:2", err)
		}
		if d := time.Since(start); d > 60*time.Second {
			t.Errorf("the fork bomb ran %v", d)
		}
		checkNothingLeft(t, root)
	})

	t.Run("usage", func(t *testing.T) {
		df := "RUN head -c 30m /dev/zero | tail -c 30m >/dev/null && echo done >/usage.txt\n"
		res, err := build1(df, mem64)
		if err != nil {
			t.Fatal(err)
		}
		if f, ok := builtFiles(t, st, res.Manifest)["usage.txt"]; !ok || f.content != "done\n" {
			t.Errorf("usage.txt in the image = %+v, want done", f)
		}
		if len(res.Steps) != 1 || !strings.Contains(res.Steps[0].Name, "RUN head") {
			t.Fatalf("Steps = %+v, want the RUN step", res.Steps)
		}
		if s := res.Steps[0]; s.PeakMemory < 30<<20 || s.PeakMemory > 64<<20 || s.CPU <= 0 {
			t.Errorf("step usage %+v, want a peak between 30 and 64 MiB and some CPU time", s)
		}
		// Limits are not part of the key, as in BuildKit and Buildah:
		// the same step under other limits is reused.
		res, err = build1(df, cgroup.Limits{Memory: 128 << 20})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.Steps) != 0 {
			t.Errorf("the step ran again under other limits: %+v", res.Steps)
		}
	})
	if left := leftCgroups(t); len(left) != 0 {
		t.Errorf("cgroups left behind: %v", left)
	}
}
