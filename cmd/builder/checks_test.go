package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/builder-dev/builder/internal/testutil"
)

// TestCheckFlag runs `builder build --check` on a Dockerfile that breaks
// rules (exit 1, the findings on stdout) and on one that does not (exit
// 0), then builds the first: the findings follow the build in plain and
// rawjson progress and are in the --metadata-file.
func TestCheckFlag(t *testing.T) {
	testutil.RequiresRoot(t)
	c := cli{t: t, bin: builderBinary(t), root: t.TempDir()}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("a\n"), 0o644)
	bad := filepath.Join(dir, "Dockerfile.bad")
	os.WriteFile(bad, []byte("FROM scratch as base\nCOPY a.txt /\nMAINTAINER me\n"), 0o644)
	good := filepath.Join(dir, "Dockerfile.good")
	os.WriteFile(good, []byte("FROM scratch\nCOPY a.txt /\n"), 0o644)

	stdout, stderr, code := c.run("build", "--check", "-f", bad, dir)
	if code != 1 || !strings.Contains(stdout, "Dockerfile.bad:1: FromAsCasing:") || !strings.Contains(stdout, "Dockerfile.bad:3: MaintainerDeprecated:") {
		t.Errorf("--check of a bad Dockerfile exited %d:\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	stdout, stderr, code = c.run("build", "--check", "-f", good, dir)
	if code != 0 || !strings.Contains(stdout, "no warnings") {
		t.Errorf("--check of a good Dockerfile exited %d:\nstdout %s\nstderr %s", code, stdout, stderr)
	}
	stdout, stderr, code = c.run("build", "--check", "--build-arg", "BUILDKIT_DOCKERFILE_CHECK=skip=all", "-f", bad, dir)
	if code != 0 {
		t.Errorf("--check with skip=all exited %d:\nstdout %s\nstderr %s", code, stdout, stderr)
	}

	md := filepath.Join(dir, "md.json")
	_, stderr, code = c.run("build", "--progress", "plain", "--metadata-file", md, "-f", bad, dir)
	if code != 0 || !strings.Contains(stderr, "2 warnings found:\nWARNING: Dockerfile.bad:1: FromAsCasing:") {
		t.Errorf("build with findings exited %d:\n%s", code, stderr)
	}
	var meta map[string]json.RawMessage
	raw, _ := os.ReadFile(md)
	if err := json.Unmarshal(raw, &meta); err != nil || !strings.Contains(string(meta["buildx.build.warnings"]), `"sourceInfo"`) {
		t.Errorf("metadata file (%v):\n%s", err, raw)
	}
	_, stderr, code = c.run("build", "--progress", "rawjson", "-f", bad, dir)
	if code != 0 || !strings.Contains(stderr, `"kind":"warning","rule":"MaintainerDeprecated"`) {
		t.Errorf("rawjson build exited %d:\n%s", code, stderr)
	}
}
