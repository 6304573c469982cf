package main

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/builder-dev/builder/internal/testutil"
)

// TestServeStopDrainsBuild interrupts `builder serve` while a build's RUN
// step runs: the build ends (it has the grace) and its client gets the
// result, then the server exits, its state closed after the build's
// records were written: a local rebuild on the state reuses the step.
func TestServeStopDrainsBuild(t *testing.T) {
	testutil.RequiresRoot(t)
	srv := cli{t: t, bin: builderBinary(t), root: t.TempDir()}
	host, server := startServerCmd(t, srv)
	dir := busyboxContext(t, fmt.Sprintf("RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo ready$((6*7)); /bin/busybox sleep 2; echo %d > /f\"]\n", time.Now().UnixNano()))
	client := exec.Command(srv.bin, "--host", host, "build", "--progress", "plain", dir)
	out, err := client.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Start(); err != nil {
		t.Fatal(err)
	}
	var seen strings.Builder
	waitFor(t, out, &seen, "ready42")
	server.Process.Signal(os.Interrupt)
	exited := make(chan error, 1)
	go func() { exited <- server.Wait() }()
	select {
	case err := <-exited:
		t.Fatalf("the server exited (%v) while a build ran", err)
	case <-time.After(500 * time.Millisecond):
	}
	rest := make([]byte, 1<<20)
	for n, err := out.Read(rest); err == nil; n, err = out.Read(rest) {
		seen.Write(rest[:n])
	}
	if err := client.Wait(); err != nil {
		t.Fatalf("the build running when the server was stopped: %v\n%s", err, seen.String())
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("the server's exit: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the server did not exit 15 s after the build ended")
	}
	if _, stderr, code := srv.run("build", "--progress", "plain", dir); code != 0 || !strings.Contains(stderr, "CACHED") {
		t.Errorf("local rebuild on the served state (exit %d) reused nothing:\n%s", code, stderr)
	}
}

// TestServeSecondSignalCancels: a second SIGINT during the grace cancels
// the build running at once, and the server exits (without it, the second
// signal did nothing and the server waited out the 10 s grace).
func TestServeSecondSignalCancels(t *testing.T) {
	testutil.RequiresRoot(t)
	srv := cli{t: t, bin: builderBinary(t), root: t.TempDir()}
	host, server := startServerCmd(t, srv)
	dir := busyboxContext(t, fmt.Sprintf("RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo ready$((6*7)); /bin/busybox sleep 60; echo %d > /f\"]\n", time.Now().UnixNano()))
	client := exec.Command(srv.bin, "--host", host, "build", "--progress", "plain", dir)
	out, err := client.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := client.Start(); err != nil {
		t.Fatal(err)
	}
	var seen strings.Builder
	waitFor(t, out, &seen, "ready42")
	server.Process.Signal(os.Interrupt)
	time.Sleep(300 * time.Millisecond)
	server.Process.Signal(os.Interrupt)
	exited := make(chan error, 1)
	go func() { exited <- server.Wait() }()
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("the server's exit: %v", err)
		}
	case <-time.After(7 * time.Second):
		t.Fatal("the server still ran 7 s after a second signal (grace 10 s)")
	}
	rest := make([]byte, 1<<20)
	for n, err := out.Read(rest); err == nil; n, err = out.Read(rest) {
		seen.Write(rest[:n])
	}
	if err := client.Wait(); err == nil {
		t.Errorf("the build cancelled by the second signal succeeded:\n%s", seen.String())
	}
}
