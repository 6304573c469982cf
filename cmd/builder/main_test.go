package main

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/builder-dev/builder/internal/testutil"
)

// builderBinary builds the CLI once per test run, so these tests use it the
// way a user does.
func builderBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "builder")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	return bin
}

type cli struct {
	t    *testing.T
	bin  string
	root string
}

func (c cli) run(args ...string) (stdout, stderr string, code int) {
	c.t.Helper()
	cmd := exec.Command(c.bin, append([]string{"--root", c.root}, args...)...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		code = ee.ExitCode()
	} else if err != nil {
		c.t.Fatalf("running builder %v: %v", args, err)
	}
	return o.String(), e.String(), code
}

// TestCLI builds the bundled demo and a failing Dockerfile with the real
// binary, and checks output, exit codes, the image store and `run`.
func TestCLI(t *testing.T) {
	testutil.RequiresRoot(t)
	c := cli{t: t, bin: builderBinary(t), root: t.TempDir()}

	demo := t.TempDir()
	for _, f := range []string{"Dockerfile", "greet.sh"} {
		b, err := os.ReadFile(filepath.Join("../../testdata/demo", f))
		if err != nil {
			t.Fatal(err)
		}
		os.WriteFile(filepath.Join(demo, f), b, 0o644)
	}
	bb, err := os.ReadFile(testutil.BusyboxPath)
	if err != nil {
		t.Fatalf("reading busybox (apt-get install busybox-static): %v", err)
	}
	os.WriteFile(filepath.Join(demo, "busybox"), bb, 0o755)

	_, stderr, code := c.run("build", "-t", "demo", "--progress", "plain", demo)
	if code != 0 {
		t.Fatalf("build exited %d:\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "named demo:latest") || strings.Contains(stderr, "CACHED") {
		t.Errorf("first build output:\n%s", stderr)
	}
	_, stderr, code = c.run("build", "-t", "demo", demo)
	if code != 0 || strings.Count(stderr, "CACHED") != 7 || strings.Contains(stderr, "DONE") {
		t.Errorf("second build exited %d, want 7 steps CACHED and none run:\n%s", code, stderr)
	}
	stdout, stderr, code := c.run("run", "demo")
	if code != 0 || !strings.HasPrefix(stdout, "hello, root in /src\nbuilt at ") || !strings.Contains(stdout, "hostname is builder") {
		t.Errorf("run demo exited %d: stdout %q stderr %q", code, stdout, stderr)
	}
	stdout, _, code = c.run("run", "demo", "sh", "-c", "echo $GREETING; exit 7")
	if code != 7 || stdout != "hello from builder\n" {
		t.Errorf("run demo sh -c ... exited %d printing %q, want 7 and the image's ENV", code, stdout)
	}
	stdout, _, _ = c.run("images")
	if !strings.Contains(stdout, "demo:latest") {
		t.Errorf("images:\n%s", stdout)
	}

	// A failing RUN: non-zero exit, the line, the command, the code and its output.
	bad := t.TempDir()
	os.WriteFile(filepath.Join(bad, "Dockerfile"), []byte("FROM demo-base-missing-on-purpose:1 AS unused\nFROM scratch\nCOPY busybox /busybox\nRUN [\"/busybox\", \"sh\", \"-c\", \"echo about to fail; exit 42\"]\n"), 0o644)
	os.WriteFile(filepath.Join(bad, "busybox"), bb, 0o755)
	_, stderr, code = c.run("build", bad)
	for _, want := range []string{"Dockerfile:4", "exited with code 42", "about to fail"} {
		if !strings.Contains(stderr, want) {
			t.Errorf("failing build output lacks %q:\n%s", want, stderr)
		}
	}
	if code == 0 {
		t.Error("failing build exited 0")
	}
	_, stderr, code = c.run("run", "nothere")
	if code == 0 || !strings.Contains(stderr, "not in the local store") {
		t.Errorf("run of a missing image exited %d: %s", code, stderr)
	}
}
