package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/builder-dev/builder/internal/testutil"
	"github.com/builder-dev/builder/internal/userns"
)

var (
	binOnce sync.Once
	binPath string
	binErr  error
	binDir  string
)

func TestMain(m *testing.M) {
	// As an ordinary user the tests run rootless: as root of a user
	// namespace, and the builder binary they start runs there too.
	userns.Init(func(w string) { fmt.Fprintln(os.Stderr, "WARNING:", w) })
	code := m.Run()
	if binDir != "" {
		os.RemoveAll(binDir)
	}
	os.Exit(code)
}

// builderBinary builds the CLI once per test run, so these tests use it the
// way a user does.
func builderBinary(t *testing.T) string {
	t.Helper()
	binOnce.Do(func() {
		// A prebuilt binary, for test runs as a user without a Go toolchain.
		if p := os.Getenv("BUILDER_TEST_BINARY"); p != "" {
			binPath = p
			return
		}
		if binDir, binErr = os.MkdirTemp("", "builder-cli-test-"); binErr != nil {
			return
		}
		binPath = filepath.Join(binDir, "builder")
		// As `make build` does: with the sandbox init embedded.
		out, err := exec.Command("go", "build", "-trimpath", "-ldflags=-s -w", "-o", "builder-init.bin", "../builder-init").CombinedOutput()
		var init []byte
		if err == nil {
			init, err = os.ReadFile("builder-init.bin")
		}
		if err == nil {
			sum := sha256.Sum256(init)
			out, err = exec.Command("go", "build", "-tags", "embedinit", "-ldflags", "-X main.initBinarySum="+hex.EncodeToString(sum[:]), "-o", binPath, ".").CombinedOutput()
		}
		if err != nil {
			binErr = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if binErr != nil {
		t.Fatal(binErr)
	}
	return binPath
}

type cli struct {
	t    *testing.T
	bin  string
	root string
}

func (c cli) run(args ...string) (stdout, stderr string, code int) {
	c.t.Helper()
	return c.runIn("", nil, args...)
}

// runIn runs builder in dir ("" for this one) with env added to the
// environment.
func (c cli) runIn(dir string, env []string, args ...string) (stdout, stderr string, code int) {
	c.t.Helper()
	cmd := exec.Command(c.bin, append([]string{"--root", c.root}, args...)...)
	cmd.Dir, cmd.Env = dir, append(os.Environ(), env...)
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
	os.WriteFile(filepath.Join(demo, "busybox-"+runtime.GOARCH), bb, 0o755)

	_, stderr, code := c.run("build", "-t", "demo", "--progress", "plain", demo)
	if code != 0 {
		t.Fatalf("build exited %d:\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "named demo:latest") || strings.Contains(stderr, "CACHED") {
		t.Errorf("first build output:\n%s", stderr)
	}
	// The RUN steps started the embedded init, written into the state dir.
	if inits, _ := filepath.Glob(filepath.Join(c.root, "bin", "init-*")); len(inits) != 1 {
		t.Errorf("sandbox init binaries in the state dir: %v, want one", inits)
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
	for _, want := range []string{"Dockerfile:4", "exit code: 42", "about to fail"} {
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

// TestKilledBuildLeavesNothing SIGKILLs the builder in the middle of a RUN
// and checks that the step's processes and mounts died with it and that
// the next build cleans up and succeeds.
func TestKilledBuildLeavesNothing(t *testing.T) {
	testutil.RequiresRoot(t)
	c := cli{t: t, bin: builderBinary(t), root: t.TempDir()}
	dir := t.TempDir()
	bb, err := os.ReadFile(testutil.BusyboxPath)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "busybox"), bb, 0o755)
	marker := "sleep 4242"
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"touch\", \"/one\"]\nRUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo started; /bin/busybox "+marker+"\"]\n"), 0o644)

	cmd := exec.Command(c.bin, "--root", c.root, "build", "--progress", "plain", dir)
	out, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	var seen strings.Builder
	// The step's output line ("#4 0.012 started"), not its name, which
	// holds the word too and is printed before the sandbox starts.
	printed := regexp.MustCompile(`#\d+ \d+\.\d+ started`)
	for !printed.MatchString(seen.String()) {
		n, err := out.Read(buf)
		if err != nil {
			t.Fatalf("build ended before its RUN started: %v\n%s", err, seen.String())
		}
		seen.Write(buf[:n])
	}
	for deadline := time.Now().Add(5 * time.Second); !sandboxAlive(marker); time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("the RUN step's %q never started:\n%s", marker, seen.String())
		}
	}
	cmd.Process.Kill()
	cmd.Wait()

	deadline := time.Now().Add(5 * time.Second)
	for sandboxAlive(marker) {
		if time.Now().After(deadline) {
			t.Fatal("the RUN step's process outlived the killed builder")
		}
		time.Sleep(20 * time.Millisecond)
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), c.root) {
		t.Errorf("a mount under the state dir outlived the killed builder:\n%s", mounts)
	}

	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"touch\", \"/one\"]\nRUN [\"/bin/busybox\", \"true\"]\n"), 0o644)
	_, stderr, code := c.run("build", "--progress", "plain", dir)
	if code != 0 {
		t.Fatalf("build after the kill exited %d:\n%s", code, stderr)
	}
	// The steps that completed before the kill are reused.
	if n := strings.Count(stderr, "CACHED"); n != 2 {
		t.Errorf("build after the kill reused %d steps, want the 2 that had completed:\n%s", n, stderr)
	}
	if entries, _ := os.ReadDir(filepath.Join(c.root, "tmp")); len(entries) != 0 {
		t.Errorf("scratch dirs of the killed build remain: %v", entries)
	}
	snaps, _ := os.ReadDir(filepath.Join(c.root, "snapshots"))
	for _, e := range snaps {
		if _, err := os.Stat(filepath.Join(c.root, "snapshots", e.Name(), "work")); err == nil {
			t.Errorf("the killed build's snapshot %s remains", e.Name())
		}
	}
}

// sandboxAlive reports whether a process whose command line contains
// marker runs.
func sandboxAlive(marker string) bool {
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		b, err := os.ReadFile(filepath.Join("/proc", p.Name(), "cmdline"))
		if err == nil && strings.Contains(strings.ReplaceAll(string(b), "\x00", " "), marker) {
			return true
		}
	}
	return false
}

// TestConcurrentBuildsShareTheStateDir starts two builds of one Dockerfile
// on one state dir at once: both succeed, one says it waits for the other's
// step, and the one that waited reuses the other's steps.
func TestConcurrentBuildsShareTheStateDir(t *testing.T) {
	testutil.RequiresRoot(t)
	c := cli{t: t, bin: builderBinary(t), root: t.TempDir()}
	dir := t.TempDir()
	bb, err := os.ReadFile(testutil.BusyboxPath)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "busybox"), bb, 0o755)
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY busybox /bin/busybox\nRUN [\"/bin/busybox\", \"sleep\", \"1\"]\n"), 0o644)

	type result struct {
		stderr string
		code   int
	}
	results := make(chan result, 2)
	for range 2 {
		go func() {
			_, stderr, code := c.run("build", "--progress", "plain", dir)
			results <- result{stderr, code}
		}()
	}
	var waited, ran, cached int
	for range 2 {
		r := <-results
		if r.code != 0 {
			t.Fatalf("a concurrent build exited %d:\n%s", r.code, r.stderr)
		}
		if strings.Contains(r.stderr, "waiting for pid") {
			waited++
		}
		if state, _ := stepState(r.stderr, "sleep"); state == "DONE" {
			ran++
		}
		if strings.Count(r.stderr, "CACHED") == 2 {
			cached++
		}
	}
	if waited != 1 || ran != 1 || cached != 1 {
		t.Errorf("of two concurrent builds, %d waited (want 1), %d ran the RUN step (want 1), %d had both steps cached (want 1)", waited, ran, cached)
	}
}

// TestKillAtAnyMoment SIGKILLs builds at a range of moments and checks that
// each following build succeeds; the last one must match a clean build.
func TestKillAtAnyMoment(t *testing.T) {
	testutil.RequiresRoot(t)
	c := cli{t: t, bin: builderBinary(t), root: t.TempDir()}
	dir := t.TempDir()
	bb, err := os.ReadFile(testutil.BusyboxPath)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "busybox"), bb, 0o755)
	var df strings.Builder
	df.WriteString("FROM scratch AS base\nCOPY busybox /bin/busybox\n")
	for i := range 6 {
		fmt.Fprintf(&df, "RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo %d > /f%d; /bin/busybox usleep 30000\"]\n", i, i)
	}
	df.WriteString("FROM base\nCOPY --from=base /f5 /last\n")
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df.String()), 0o644)

	for _, delay := range []time.Duration{5, 20, 40, 80, 120, 160, 200, 260} {
		cmd := exec.Command(c.bin, "--root", c.root, "build", "-t", "killed", "--progress", "quiet", dir)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay * time.Millisecond)
		cmd.Process.Kill()
		cmd.Wait()
	}
	if _, stderr, code := c.run("build", "-t", "survivor", dir); code != 0 {
		t.Fatalf("build after the kills exited %d:\n%s", code, stderr)
	}
	stdout, stderr, code := c.run("run", "survivor", "/bin/busybox", "cat", "/f0", "/f5", "/last")
	if code != 0 || stdout != "0\n5\n5\n" {
		t.Errorf("run after the kills exited %d printing %q (%s), want 0 5 5", code, stdout, stderr)
	}
	mounts, _ := os.ReadFile("/proc/self/mountinfo")
	if strings.Contains(string(mounts), c.root) {
		t.Errorf("a mount under the state dir remains:\n%s", mounts)
	}
}
