package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/builder-dev/builder/internal/testutil"
)

// TestOnErrorShell drives `builder build --on-error=shell` on a terminal
// (tmux): a failing RUN opens a shell in the step's sandbox where the
// files the command made before failing are, with its env and working
// directory; Ctrl-C reaches the shell's command, not builder; exiting the
// shell ends the build with the step's error.
func TestOnErrorShell(t *testing.T) {
	testutil.RequiresRoot(t)
	tmux := testutil.RequireTool(t, "tmux", "tmux")
	bin := builderBinary(t)
	dir := t.TempDir()
	bb, err := os.ReadFile(testutil.BusyboxPath)
	if err != nil {
		t.Fatalf("reading busybox (apt-get install busybox-static): %v", err)
	}
	ctx := filepath.Join(dir, "ctx")
	os.Mkdir(ctx, 0o755)
	os.WriteFile(filepath.Join(ctx, "busybox"), bb, 0o755)
	os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(`FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
WORKDIR /work
ENV MARK=from-the-step
RUN mkdir /partial && touch /partial/made-before-failing && exit 3
`), 0o644)
	sock := filepath.Join(dir, "tmux.sock")
	tm := func(args ...string) string {
		t.Helper()
		out, err := exec.Command(tmux, append([]string{"-S", sock}, args...)...).CombinedOutput()
		if err != nil {
			t.Fatalf("tmux %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	script := filepath.Join(dir, "run.sh")
	os.WriteFile(script, []byte("#!/bin/sh\n"+bin+" --root "+filepath.Join(dir, "state")+" build --progress plain --on-error=shell "+ctx+"\necho BUILD-EXIT=$?\nsleep 600\n"), 0o755)
	tm("new-session", "-d", "-s", "t", "-x", "160", "-y", "50", script)
	t.Cleanup(func() { exec.Command(tmux, "-S", sock, "kill-server").Run() })
	screen := func() string { return tm("capture-pane", "-p", "-t", "t", "-S", "-200") }
	waitFor := func(what string) string {
		t.Helper()
		deadline := time.Now().Add(2 * time.Minute)
		for {
			s := screen()
			if strings.Contains(s, what) {
				return s
			}
			if time.Now().After(deadline) {
				t.Fatalf("the terminal never showed %q:\n%s", what, s)
			}
			time.Sleep(200 * time.Millisecond)
		}
	}
	waitFor("(debug) /work #")
	tm("send-keys", "-t", "t", "sleep 300", "Enter")
	time.Sleep(time.Second)
	tm("send-keys", "-t", "t", "C-c")
	tm("send-keys", "-t", "t", "ls /partial; echo mark=$MARK; exit", "Enter")
	s := waitFor("BUILD-EXIT=")
	for _, want := range []string{"made-before-failing", "mark=from-the-step", "Dockerfile:6", "exit code: 3", "BUILD-EXIT=1"} {
		if !strings.Contains(s, want) {
			t.Errorf("the terminal lacks %q:\n%s", want, s)
		}
	}
}

// Without a terminal --on-error=shell is an error that says so.
func TestOnErrorShellNeedsTerminal(t *testing.T) {
	c := cli{t: t, bin: builderBinary(t), root: t.TempDir()}
	_, stderr, code := c.run("build", "--on-error=shell", t.TempDir())
	if code == 0 || !strings.Contains(stderr, "--on-error=shell needs a terminal") {
		t.Errorf("build --on-error=shell without a terminal exited %d: %s", code, stderr)
	}
}

// TestOnErrorKeep keeps a failed step's filesystem: `builder debug` runs
// commands in it later with the step's env and working directory, on a
// scratch layer (the kept state does not change), the automatic GC spares
// it, du counts it, and prune removes it.
func TestOnErrorKeep(t *testing.T) {
	testutil.RequiresRoot(t)
	c := cli{t: t, bin: builderBinary(t), root: t.TempDir()}
	bb, err := os.ReadFile(testutil.BusyboxPath)
	if err != nil {
		t.Fatalf("reading busybox (apt-get install busybox-static): %v", err)
	}
	ctx := t.TempDir()
	os.WriteFile(filepath.Join(ctx, "busybox"), bb, 0o755)
	os.WriteFile(filepath.Join(ctx, "Dockerfile"), []byte(`FROM scratch
COPY busybox /bin/busybox
RUN ["/bin/busybox", "--install", "-s", "/bin"]
WORKDIR /work
ENV MARK=from-the-step
RUN --mount=type=cache,target=/cache echo cached > /cache/c && mkdir /partial && touch /partial/made-before-failing && exit 3
`), 0o644)
	_, stderr, code := c.run("build", "--on-error=keep", ctx)
	if code == 0 || !strings.Contains(stderr, "kept the failed step's filesystem as") || !strings.Contains(stderr, "exit code: 3") {
		t.Fatalf("build --on-error=keep exited %d:\n%s", code, stderr)
	}
	// Another build, with an automatic GC that would remove all it can.
	os.WriteFile(filepath.Join(ctx, "Dockerfile.ok"), []byte("FROM scratch\nCOPY busybox /bin/busybox\n"), 0o644)
	if _, stderr, code := c.run("build", "-f", filepath.Join(ctx, "Dockerfile.ok"), "--gc-keep-storage", "1", ctx); code != 0 {
		t.Fatalf("second build exited %d:\n%s", code, stderr)
	}
	stdout, stderr, code := c.run("debug", "last", "sh", "-c", "ls /partial; echo $MARK; pwd; cat /cache/c; touch /partial/from-debug")
	if code != 0 || stdout != "made-before-failing\nfrom-the-step\n/work\ncached\n" {
		t.Errorf("debug last exited %d printing %q, %s", code, stdout, stderr)
	}
	if stdout, _, code = c.run("debug", "last", "ls", "/partial"); code != 0 || stdout != "made-before-failing\n" {
		t.Errorf("the kept state changed: ls /partial = %q (exit %d)", stdout, code)
	}
	if _, _, code = c.run("debug", "last", "sh", "-c", "exit 5"); code != 5 {
		t.Errorf("debug's exit code = %d, want the command's 5", code)
	}
	if stdout, _, _ = c.run("debug", "--list"); strings.Count(stdout, "\n") != 1 || !strings.Contains(stdout, "exit code: 3") {
		t.Errorf("debug --list:\n%s", stdout)
	}
	if stdout, _, _ = c.run("prune", "--force"); !strings.Contains(stdout, "1 kept failure") {
		t.Errorf("prune --force:\n%s", stdout)
	}
	if _, stderr, code = c.run("debug", "last"); code == 0 || !strings.Contains(stderr, "no failed step is kept") {
		t.Errorf("debug after prune exited %d: %s", code, stderr)
	}
}
