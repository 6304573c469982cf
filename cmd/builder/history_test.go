package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/builder-dev/builder/history"
	"github.com/builder-dev/builder/internal/testutil"
	"github.com/builder-dev/builder/internal/userns"
)

// TestHistory builds, rebuilds and fails a build, then reads the records
// back with every history command, and removes them.
func TestHistory(t *testing.T) {
	testutil.RequiresRoot(t)
	c := cli{t: t, bin: builderBinary(t), root: t.TempDir()}
	bb, err := os.ReadFile(testutil.BusyboxPath)
	if err != nil {
		t.Fatalf("reading busybox (apt-get install busybox-static): %v", err)
	}
	ctx := t.TempDir()
	os.WriteFile(filepath.Join(ctx, "busybox"), bb, 0o755)
	df := "FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo made it; /bin/busybox touch /partial; exit ${CODE:-0}\"]\n"
	df = strings.Replace(df, "FROM scratch\n", "FROM scratch\nARG CODE\n", 1)
	os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(df), 0o644)

	for i, args := range [][]string{
		{"build", ctx},
		{"build", ctx},
		{"build", "--build-arg", "CODE=3", "--build-arg", "API_TOKEN=hunter2", ctx},
	} {
		_, stderr, code := c.run(args...)
		if (code == 0) != (i < 2) {
			t.Fatalf("build %d (%v) exited %d:\n%s", i, args, code, stderr)
		}
	}

	stdout, stderr, code := c.run("history", "--format", "json")
	if code != 0 {
		t.Fatalf("history exited %d: %s", code, stderr)
	}
	var recs []history.Record
	if err := json.Unmarshal([]byte(stdout), &recs); err != nil {
		t.Fatalf("history --format json: %v\n%s", err, stdout)
	}
	if len(recs) != 3 {
		t.Fatalf("history lists %d builds, want 3:\n%s", len(recs), stdout)
	}
	failed, noop, first := recs[0], recs[1], recs[2]
	if first.Error != "" || first.Digest == "" || noop.Digest == "" || failed.Error == "" || failed.Digest != "" {
		t.Errorf("results: first %q/%q, no-op %q, failed %q/%q", first.Digest, first.Error, noop.Digest, failed.Digest, failed.Error)
	}
	if ran, cached := noop.Counts(); ran != 0 || cached == 0 {
		t.Errorf("no-op rebuild recorded %d steps run, %d cached; want 0 run", ran, cached)
	}
	if strings.Contains(stdout, "hunter2") || !strings.Contains(strings.Join(failed.Args, " "), "API_TOKEN=****") {
		t.Errorf("the secret-looking build arg is not redacted: %q", failed.Args)
	}
	var run history.Step
	for _, s := range failed.Steps {
		if strings.Contains(s.Name, "RUN") {
			run = s
		}
	}
	if run.Status != "failed" || !strings.Contains(run.Error, "exit code: 3") || run.Reason == "" || (!userns.Rootless() && (run.Usage == nil || run.Usage.CPU == 0 && run.Usage.PeakMemory == 0)) {
		t.Errorf("failed RUN step recorded as %+v", run)
	}

	stdout, _, code = c.run("history")
	if code != 0 || strings.Count(stdout, "\n") != 4 || !strings.Contains(stdout, "failed") {
		t.Errorf("history table:\n%s", stdout)
	}
	stdout, _, code = c.run("history", "logs", "last", "#"+strconv.Itoa(run.Index))
	if code != 0 || stdout != "made it\n" {
		t.Errorf("history logs last #%d = %q (exit %d), want the step's output", run.Index, stdout, code)
	}
	stdout, _, code = c.run("history", "inspect", failed.ID[len(failed.ID)-6:], "--explain")
	for _, want := range []string{"Result:     failed", "FAILED", "compared with " + noop.ID, "cached before, ran now"} {
		if code != 0 || !strings.Contains(stdout, want) {
			t.Errorf("history inspect --explain lacks %q (exit %d):\n%s", want, code, stdout)
		}
	}
	if _, stderr, code := c.run("history", "inspect", "nosuchbuild"); code == 0 || !strings.Contains(stderr, "no recorded build") {
		t.Errorf("inspect of an unknown build exited %d: %s", code, stderr)
	}
	if stdout, _, code = c.run("history", "rm", first.ID); code != 0 || strings.TrimSpace(stdout) != first.ID {
		t.Errorf("history rm = %q, exit %d", stdout, code)
	}
	if stdout, _, code = c.run("prune", "--history"); code != 0 || !strings.Contains(stdout, "2 build records") {
		t.Errorf("prune --history = %q, exit %d", stdout, code)
	}
	if stdout, _, _ = c.run("history", "--format", "json"); strings.TrimSpace(stdout) != "[]" {
		t.Errorf("history after prune --history = %s", stdout)
	}
}
