package main

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/builder-dev/builder/internal/testutil"
)

// concurrentContext writes a context with busybox and the Dockerfile df.
func concurrentContext(t *testing.T, df string) string {
	t.Helper()
	dir := t.TempDir()
	bb, err := os.ReadFile(testutil.BusyboxPath)
	if err != nil {
		t.Fatalf("reading busybox (apt-get install busybox-static): %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte(df), 0o644); err != nil {
		t.Fatal(err)
	}
	return dir
}

// runStep is a RUN line running script with busybox's sh.
func runStep(script string) string {
	return fmt.Sprintf("RUN [\"/bin/busybox\", \"sh\", \"-c\", %q]\n", "export PATH=/bin; /bin/busybox --install -s /bin 2>/dev/null; "+script)
}

// buildsAtOnce runs one `builder build` per argument list at once and
// returns their stderr, failing the test if any fails.
func buildsAtOnce(c cli, args ...[]string) []string {
	c.t.Helper()
	type result struct {
		i      int
		stderr string
		code   int
	}
	results := make(chan result, len(args))
	for i, a := range args {
		go func() {
			_, stderr, code := c.run(append([]string{"build", "--progress", "plain"}, a...)...)
			results <- result{i, stderr, code}
		}()
	}
	out := make([]string, len(args))
	for range args {
		r := <-results
		if r.code != 0 {
			c.t.Fatalf("build %v exited %d:\n%s", args[r.i], r.code, r.stderr)
		}
		out[r.i] = r.stderr
	}
	return out
}

// catImage prints files of an image, through `builder run`.
func catImage(c cli, image string, files ...string) string {
	c.t.Helper()
	stdout, stderr, code := c.run(append([]string{"run", image, "/bin/busybox", "cat"}, files...)...)
	if code != 0 {
		c.t.Fatalf("run %s cat %v exited %d: %s", image, files, code, stderr)
	}
	return stdout
}

// uptimes reads "/start" and "/end" as written from /proc/uptime.
func uptimes(c cli, image string) (start, end float64) {
	c.t.Helper()
	lines := strings.Split(strings.TrimSpace(catImage(c, image, "/start", "/end")), "\n")
	if len(lines) != 2 {
		c.t.Fatalf("%s: /start and /end hold %q", image, lines)
	}
	parse := func(l string) float64 {
		f, err := strconv.ParseFloat(strings.Fields(l)[0], 64)
		if err != nil {
			c.t.Fatalf("%s: uptime %q: %v", image, l, err)
		}
		return f
	}
	return parse(lines[0]), parse(lines[1])
}

// TestConcurrentIndependentStepsOverlap runs two builds on one state dir
// whose sleeping steps differ: both run, and at the same time (their
// steps' own clocks say so; no wall-clock threshold).
func TestConcurrentIndependentStepsOverlap(t *testing.T) {
	testutil.RequiresRoot(t)
	c := cli{t: t, bin: builderBinary(t), root: t.TempDir()}
	var dirs []string
	for _, name := range []string{"a", "b"} {
		dirs = append(dirs, concurrentContext(t, "FROM scratch\nCOPY busybox /bin/busybox\n"+
			runStep("cat /proc/uptime > /start; sleep 2; cat /proc/uptime > /end; echo "+name+" > /name")))
	}
	out := buildsAtOnce(c, []string{"-t", "a", dirs[0]}, []string{"-t", "b", dirs[1]})
	for i, o := range out {
		if !regexp.MustCompile(`#\d+ DONE .*\n(?s:.*)named`).MatchString(o) || strings.Count(o, "sleep 2") != 1 {
			t.Errorf("build %d output:\n%s", i, o)
		}
	}
	as, ae := uptimes(c, "a")
	bs, be := uptimes(c, "b")
	if !(as < be && bs < ae) {
		t.Errorf("the steps did not overlap: a ran %.2f..%.2f, b ran %.2f..%.2f (uptime seconds)", as, ae, bs, be)
	}
	if got := catImage(c, "a", "/name") + catImage(c, "b", "/name"); got != "a\nb\n" {
		t.Errorf("images hold /name %q, want a and b", got)
	}
}

// stepState returns what the plain progress says of the step whose name
// contains marker: "DONE", "CACHED" or "" (and the step's lines).
func stepState(out, marker string) (string, string) {
	var num string
	for _, l := range strings.Split(out, "\n") {
		if m := regexp.MustCompile(`^(#\d+) \[`).FindStringSubmatch(l); m != nil && strings.Contains(l, marker) {
			num = m[1]
		}
	}
	if num == "" {
		return "", ""
	}
	var lines []string
	state := ""
	for _, l := range strings.Split(out, "\n") {
		if !strings.HasPrefix(l, num+" ") {
			continue
		}
		lines = append(lines, l)
		switch {
		case strings.HasPrefix(l, num+" CACHED"):
			state = "CACHED"
		case strings.HasPrefix(l, num+" DONE"):
			state = "DONE"
		}
	}
	return state, strings.Join(lines, "\n")
}

// TestConcurrentSharedStepRunsOnce runs two builds on one state dir that
// share a sleeping step and differ after it: the step runs in one of them,
// the other waits for it and uses its result.
func TestConcurrentSharedStepRunsOnce(t *testing.T) {
	testutil.RequiresRoot(t)
	c := cli{t: t, bin: builderBinary(t), root: t.TempDir()}
	shared := runStep("sleep 2; cat /proc/sys/kernel/random/uuid > /stamp")
	var dirs []string
	for _, name := range []string{"a", "b"} {
		dirs = append(dirs, concurrentContext(t, "FROM scratch\nCOPY busybox /bin/busybox\n"+shared+runStep("echo "+name+" > /name")))
	}
	out := buildsAtOnce(c, []string{"-t", "a", dirs[0]}, []string{"-t", "b", dirs[1]})
	var states []string
	for _, o := range out {
		s, lines := stepState(o, "sleep 2")
		states = append(states, s)
		if s == "CACHED" && !strings.Contains(lines, "waiting for pid") {
			t.Errorf("the build that reused the step does not say whom it waited for:\n%s", o)
		}
	}
	if !(states[0] == "DONE" && states[1] == "CACHED" || states[0] == "CACHED" && states[1] == "DONE") {
		t.Errorf("the shared step was %q in one build and %q in the other, want DONE once and CACHED once:\n%s\n----\n%s", states[0], states[1], out[0], out[1])
	}
	a, b := catImage(c, "a", "/stamp", "/name"), catImage(c, "b", "/stamp", "/name")
	sa, _, _ := strings.Cut(a, "\n")
	sb, _, _ := strings.Cut(b, "\n")
	if sa == "" || sa != sb || !strings.HasSuffix(a, "a\n") || !strings.HasSuffix(b, "b\n") {
		t.Errorf("images hold %q and %q, want one stamp and their own names", a, b)
	}
}

// startBuild starts a build and returns once the step printing marker
// has printed it; wait ends the build and returns its stderr.
func startBuild(c cli, dir, marker string, args ...string) (cmd *exec.Cmd, wait func() (string, error)) {
	c.t.Helper()
	cmd = exec.Command(c.bin, append(append([]string{"--root", c.root, "build", "--progress", "plain"}, args...), dir)...)
	pipe, err := cmd.StderrPipe()
	if err != nil {
		c.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		c.t.Fatal(err)
	}
	var seen bytes.Buffer
	r := bufio.NewReader(pipe)
	printed := regexp.MustCompile(`#\d+ \d+\.\d+ ` + marker)
	for !printed.Match(seen.Bytes()) {
		line, err := r.ReadBytes('\n')
		seen.Write(line)
		if err != nil {
			cmd.Wait()
			c.t.Fatalf("build ended before its step printed %q: %v\n%s", marker, err, seen.String())
		}
	}
	done := make(chan error, 1)
	go func() {
		_, err := io.Copy(&seen, r)
		done <- err
	}()
	return cmd, func() (string, error) {
		<-done
		err := cmd.Wait()
		return seen.String(), err
	}
}

// TestConcurrentReadersAndPruneDuringBuild runs `images`, `du` and
// `prune --all` while a build sleeps in a step: the first two do not
// wait for it, and the prune removes other cache but not what the build
// uses, which it then finishes with.
func TestConcurrentReadersAndPruneDuringBuild(t *testing.T) {
	testutil.RequiresRoot(t)
	c := cli{t: t, bin: builderBinary(t), root: t.TempDir()}
	// Cache that nothing needs, for the prune to remove.
	other := concurrentContext(t, "FROM scratch\nCOPY busybox /bin/busybox\n"+runStep("echo other > /other"))
	if _, stderr, code := c.run("build", other); code != 0 {
		t.Fatalf("build exited %d:\n%s", code, stderr)
	}
	base := "FROM scratch\nCOPY busybox /bin/busybox\n" + runStep("echo one > /one")
	first := concurrentContext(t, base)
	if _, stderr, code := c.run("build", "-t", "first", first); code != 0 {
		t.Fatalf("build exited %d:\n%s", code, stderr)
	}
	if _, stderr, code := c.run("rmi", "first"); code != 0 {
		t.Fatalf("rmi exited %d: %s", code, stderr)
	}
	// The running build reuses the cached steps, then sleeps.
	dir := concurrentContext(t, base+runStep("echo sleeping; sleep 3")+runStep("cat /one > /two; cat /proc/uptime > /after"))
	cmd, wait := startBuild(c, dir, "sleeping", "-t", "second")

	_, stderr, code := c.run("images")
	if code != 0 {
		t.Errorf("images during a build exited %d: %s", code, stderr)
	}
	_, stderr, code = c.run("du")
	if code != 0 {
		t.Errorf("du during a build exited %d: %s", code, stderr)
	}
	prune, stderr, code := c.run("prune", "--all", "--force")
	if code != 0 {
		t.Errorf("prune during a build exited %d: %s", code, stderr)
	}
	returned := hostUptime(t)
	if !strings.Contains(prune, "Removed") {
		t.Errorf("prune removed nothing (the unused cache should go):\n%s", prune)
	}
	out, err := wait()
	if err != nil {
		t.Fatalf("the build beside the prune failed: %v\n%s\nprune said:\n%s", err, out, prune)
	}
	if got := catImage(c, "second", "/one", "/two"); got != "one\none\n" {
		t.Errorf("image built beside a prune holds %q, want one and one", got)
	}
	// They were done before the build's last step: they did not wait
	// for the build.
	after, err := strconv.ParseFloat(strings.Fields(catImage(c, "second", "/after"))[0], 64)
	if err != nil || returned >= after {
		t.Errorf("images, du and prune returned at uptime %.2f, after the build's last step ran (%.2f, %v): they waited for it", returned, after, err)
	}
	_ = cmd
}

// hostUptime reads /proc/uptime, the clock the steps above write.
func hostUptime(t *testing.T) float64 {
	b, err := os.ReadFile("/proc/uptime")
	if err != nil {
		t.Fatal(err)
	}
	f, err := strconv.ParseFloat(strings.Fields(string(b))[0], 64)
	if err != nil {
		t.Fatal(err)
	}
	return f
}

// TestConcurrentKilledBuildLocksNothing SIGKILLs a build in the middle of
// a step and runs the same step again at once: the dead build's database
// lock, key lock and lease do not hold it up, and are gone afterwards.
func TestConcurrentKilledBuildLocksNothing(t *testing.T) {
	testutil.RequiresRoot(t)
	c := cli{t: t, bin: builderBinary(t), root: t.TempDir()}
	// A cache mount outlives the killed run, and is no part of the
	// step's key: the second run of the same step finds the marker and
	// does not sleep.
	df := "FROM scratch\nCOPY busybox /bin/busybox\n" +
		"RUN --mount=type=cache,target=/c [\"/bin/busybox\", \"sh\", \"-c\", \"if [ -e /c/once ]; then echo again; else /bin/busybox touch /c/once; echo started; /bin/busybox sleep 600; fi\"]\n"
	dir := concurrentContext(t, df)
	cmd, wait := startBuild(c, dir, "started")
	cmd.Process.Kill()
	wait()

	done := make(chan struct{})
	var stderr string
	var code int
	go func() {
		defer close(done)
		_, stderr, code = c.run("build", "--progress", "plain", dir)
	}()
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		t.Fatal("the build after a killed one is held up")
	}
	if code != 0 {
		t.Fatalf("build after the kill exited %d:\n%s", code, stderr)
	}
	if strings.Contains(stderr, "waiting for") || !strings.Contains(stderr, "again") {
		t.Errorf("build after the kill waited, or did not run the step again:\n%s", stderr)
	}
	for _, d := range []string{"leases", "locks"} {
		if ents, _ := os.ReadDir(filepath.Join(c.root, d)); len(ents) != 0 {
			t.Errorf("%s left in the state dir: %v", d, ents)
		}
	}
}
