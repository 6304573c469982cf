package main

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/builder-dev/builder/internal/testutil"
)

// TestCLINetworkStartsEarly: the build's network helper starts while the
// steps before the first RUN on the default network run, not when it
// starts; a no-op rebuild does not start it. A slirp4netns in $PATH that
// notes when it starts stands for the real one.
func TestCLINetworkStartsEarly(t *testing.T) {
	testutil.RequiresRoot(t)
	real, err := exec.LookPath("slirp4netns")
	if err != nil || !haveNetHelper() {
		t.Skip("needs slirp4netns and /dev/net/tun")
	}
	c := cli{t: t, bin: builderBinary(t), root: t.TempDir()}
	wrap, mark := t.TempDir(), filepath.Join(t.TempDir(), "started")
	os.WriteFile(filepath.Join(wrap, "slirp4netns"), []byte("#!/bin/sh\ndate +%s.%N >> "+mark+"\nexec "+real+` "$@"`+"\n"), 0o755)
	dir := busyboxContext(t, `RUN --network=none ["/bin/busybox", "sleep", "1"]
RUN ["/bin/busybox", "true"]
`)
	build := func() (runStarted time.Time) {
		cmd := exec.Command(c.bin, "--root", c.root, "build", "--progress=rawjson", dir)
		cmd.Env = append(os.Environ(), "PATH="+wrap+":"+os.Getenv("PATH"), "BUILDER_NETWORK_HELPER=slirp4netns")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("build: %v\n%s", err, out)
		}
		for _, line := range strings.Split(string(out), "\n") {
			var e struct{ Time, Kind, Name string }
			if json.Unmarshal([]byte(line), &e) == nil && e.Kind == "started" && strings.Contains(e.Name, `"true"`) {
				runStarted, _ = time.Parse(time.RFC3339Nano, e.Time)
			}
		}
		return runStarted
	}

	runStarted := build()
	b, err := os.ReadFile(mark)
	if err != nil {
		t.Fatalf("the build did not start slirp4netns: %v", err)
	}
	sec, err := strconv.ParseFloat(strings.TrimSpace(string(b)), 64)
	if err != nil {
		t.Fatalf("slirp4netns started %q times", b)
	}
	helperStarted := time.Unix(0, int64(sec*1e9))
	if runStarted.IsZero() {
		t.Fatal("no started event for the RUN on the default network")
	}
	// The sleep of the step before runs between the two.
	if ahead := runStarted.Sub(helperStarted); ahead < 500*time.Millisecond {
		t.Errorf("slirp4netns started %v before the RUN step, want the step before's second of sleep ahead", ahead)
	}

	os.Remove(mark)
	build()
	if _, err := os.Stat(mark); err == nil {
		t.Error("a no-op build started slirp4netns")
	}
}
