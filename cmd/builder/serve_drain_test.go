package main

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/builder-dev/builder/internal/testutil"
)

// drainBuild is a `builder serve` and a client's build on it.
type drainBuild struct {
	srv            cli
	dir            string
	server, client *exec.Cmd
	out            io.Reader
	seen           strings.Builder
}

// startDrainBuild starts a server and a build whose RUN step prints
// ready42, then sleeps for sleep seconds; it returns once the step runs.
func startDrainBuild(t *testing.T, sleep int) *drainBuild {
	testutil.RequiresRoot(t)
	d := &drainBuild{srv: cli{t: t, bin: builderBinary(t), root: t.TempDir()}}
	var host string
	host, d.server = startServerCmd(t, d.srv)
	d.dir = busyboxContext(t, fmt.Sprintf("RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo ready$((6*7)); /bin/busybox sleep %d; echo %d > /f\"]\n", sleep, time.Now().UnixNano()))
	d.client = exec.Command(d.srv.bin, "--host", host, "build", "--progress", "plain", d.dir)
	var err error
	if d.out, err = d.client.StderrPipe(); err != nil {
		t.Fatal(err)
	}
	if err := d.client.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, d.out, &d.seen, "ready42")
	return d
}

// clientExit reads the rest of the client's output and waits for it.
func (d *drainBuild) clientExit() error {
	rest := make([]byte, 1<<20)
	for n, err := d.out.Read(rest); err == nil; n, err = d.out.Read(rest) {
		d.seen.Write(rest[:n])
	}
	return d.client.Wait()
}

// TestServeStopDrainsBuild interrupts `builder serve` while a build's RUN
// step runs: the build ends (it has the grace) and its client gets the
// result, then the server exits, its state closed after the build's
// records were written: a local rebuild on the state reuses the step.
func TestServeStopDrainsBuild(t *testing.T) {
	d := startDrainBuild(t, 2)
	d.server.Process.Signal(os.Interrupt)
	exited := make(chan error, 1)
	go func() { exited <- d.server.Wait() }()
	select {
	case err := <-exited:
		t.Fatalf("the server exited (%v) while a build ran", err)
	case <-time.After(500 * time.Millisecond):
	}
	if err := d.clientExit(); err != nil {
		t.Fatalf("the build running when the server was stopped: %v\n%s", err, d.seen.String())
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("the server's exit: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the server did not exit 15 s after the build ended")
	}
	if _, stderr, code := d.srv.run("build", "--progress", "plain", d.dir); code != 0 || !strings.Contains(stderr, "CACHED") {
		t.Errorf("local rebuild on the served state (exit %d) reused nothing:\n%s", code, stderr)
	}
}

// TestServeSecondSignalCancels: a second SIGINT during the grace cancels
// the build running at once, and the server exits (without it, the second
// signal did nothing and the server waited out the 10 s grace).
func TestServeSecondSignalCancels(t *testing.T) {
	d := startDrainBuild(t, 60)
	d.server.Process.Signal(os.Interrupt)
	time.Sleep(300 * time.Millisecond)
	d.server.Process.Signal(os.Interrupt)
	exited := make(chan error, 1)
	go func() { exited <- d.server.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("the server's exit: %v", err)
		}
	case <-time.After(7 * time.Second):
		t.Fatal("the server still ran 7 s after a second signal (grace 10 s)")
	}
	if err := d.clientExit(); err == nil {
		t.Errorf("the build cancelled by the second signal succeeded:\n%s", d.seen.String())
	}
}
