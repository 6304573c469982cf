package executor_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/builder-dev/builder/executor"
	"github.com/builder-dev/builder/executor/cgroup"
	"github.com/builder-dev/builder/executor/mountpoints"
	"github.com/builder-dev/builder/internal/testutil"
	"github.com/builder-dev/builder/internal/userns"
	"github.com/builder-dev/builder/snapshot"
)

func TestMain(m *testing.M) {
	executor.Init()
	if probe := os.Getenv(probeEnv); probe != "" {
		os.Exit(runProbes(probe)) // inside a sandbox: see seccomp_linux_test.go
	}
	// As an ordinary user the tests run rootless: as root of a user namespace.
	userns.Init(func(w string) { os.Stderr.WriteString("WARNING: " + w + "\n") })
	if spec := os.Getenv(helperSpecEnv); spec != "" {
		os.Exit(helperRun(spec))
	}
	// Every sandbox of these tests has the layer of mountpoints beneath its
	// rootfs, as builder's steps have; TestUpperDirAndStubs turns it off.
	var err error
	mountpointLayerDir, err = os.MkdirTemp("", "executor-test-mountpoints-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	mountpoints.Use(mountpointLayerDir)
	code := m.Run()
	os.RemoveAll(mountpointLayerDir)
	// Tests that SIGKILL a helper running a sandbox leave its cgroup.
	cgroup.RemoveStale()
	os.Exit(code)
}

// mountpointLayerDir keeps the tests' layer of mountpoints.
var mountpointLayerDir string

// helperSpecEnv makes the test binary run one sandbox from a JSON Spec, as
// a stand-in for the builder process in TestParentKilled.
const helperSpecEnv = "EXECUTOR_TEST_HELPER_SPEC"

// helperSecretEnv is the data of the helper's secret mounts.
const helperSecretEnv = "EXECUTOR_TEST_HELPER_SECRET"

func helperRun(specJSON string) int {
	var spec executor.Spec
	if err := json.Unmarshal([]byte(specJSON), &spec); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 2
	}
	spec.Stdout, spec.Stderr = os.Stdout, os.Stderr
	// Secret data is never in a spec's JSON.
	for i := range spec.RunMounts {
		if spec.RunMounts[i].Type == executor.MountSecret {
			spec.RunMounts[i].Data = []byte(os.Getenv(helperSecretEnv))
		}
	}
	if os.Getenv(helperPrepareEnv) != "" {
		if err := prepareNetwork(); err != nil {
			fmt.Fprintln(os.Stderr, "prepared network:", err)
			return 3
		}
	}
	if err := executor.Run(context.Background(), spec); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	if began, _ := executor.SharedNetworkState(os.Getenv("BUILDER_NETWORK_HELPER")); os.Getenv(helperPrepareEnv) != "" && began.After(preparedAt) {
		return 4 // a second start
	}
	return 0
}

// helperPrepareEnv makes helperRun prepare the network, and wait for it as
// a build does for its earlier steps, before it runs the spec.
const helperPrepareEnv = "EXECUTOR_TEST_HELPER_PREPARE"

var preparedAt time.Time

// prepareNetwork checks that PrepareNetwork starts the network without
// waiting for it, and that it is ready before the step runs.
func prepareNetwork() error {
	executor.PrepareNetwork()
	began, done := executor.SharedNetworkState(os.Getenv("BUILDER_NETWORK_HELPER"))
	if began.IsZero() || done {
		return fmt.Errorf("PrepareNetwork returned with the start begun at %v, ended %v: want it begun and under way", began, done)
	}
	preparedAt = began
	for deadline := time.Now().Add(30 * time.Second); !done; {
		if time.Now().After(deadline) {
			return errors.New("not ready after 30 s")
		}
		time.Sleep(5 * time.Millisecond)
		_, done = executor.SharedNetworkState(os.Getenv("BUILDER_NETWORK_HELPER"))
	}
	return nil
}

// busyboxApplets get a symlink to /bin/busybox in the test rootfs.
var busyboxApplets = []string{
	"sh", "true", "false", "echo", "cat", "id", "ls", "mkdir", "touch",
	"sleep", "hostname", "ps", "mount", "env", "pwd", "grep", "wc", "head",
	"test", "stat", "readlink", "mknod", "dd", "kill", "ln",
}

// newBusyboxRootfs makes an image-like directory: /bin/busybox (from the
// host's static busybox) with applet symlinks, and /etc/passwd and
// /etc/group with root, a user app (1000:1000) and a group extra (2000)
// that app is a member of. It has no /proc, /dev, /sys or /etc/hosts.
func newBusyboxRootfs(t testing.TB) string {
	t.Helper()
	bb, err := os.ReadFile("/usr/bin/busybox")
	if err != nil {
		t.Skipf("needs a static busybox at /usr/bin/busybox (Debian busybox-static): %v", err)
	}
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil { // t.TempDir is 0700
		t.Fatal(err)
	}
	for _, d := range []string{"bin", "etc", "tmp"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(dir, "tmp"), 0o1777); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bin/busybox"), bb, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range busyboxApplets {
		if err := os.Symlink("busybox", filepath.Join(dir, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
	files := map[string]string{
		"etc/passwd": "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\n",
		"etc/group":  "root:x:0:\napp:x:1000:\nextra:x:2000:app\n",
	}
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// sandbox is one overlay of a lower dir with a fresh upper dir.
type sandbox struct {
	lower, upper, work, state string
}

func newSandbox(t testing.TB, lower string) *sandbox {
	t.Helper()
	testutil.RequiresRoot(t)
	base := t.TempDir()
	s := &sandbox{
		lower: lower,
		upper: filepath.Join(base, "upper"),
		work:  filepath.Join(base, "work"),
		state: filepath.Join(base, "state"),
	}
	for _, d := range []string{s.upper, s.work, s.state} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

// spec returns a Spec for args with PATH=/bin, capturing nothing.
func (s *sandbox) spec(args ...string) executor.Spec {
	options := []string{
		"lowerdir=" + s.lower, "upperdir=" + s.upper, "workdir=" + s.work,
		"index=off", "redirect_dir=off", "metacopy=off",
	}
	if userns.Rootless() {
		// Overlay in a user namespace: see snapshot.WithUserXattr.
		options = []string{
			"lowerdir=" + s.lower, "upperdir=" + s.upper, "workdir=" + s.work,
			"index=off", "redirect_dir=nofollow", "metacopy=off", "userxattr",
		}
	}
	return executor.Spec{
		Rootfs: []snapshot.Mount{{
			Type:    "overlay",
			Source:  "overlay",
			Options: options,
		}},
		UpperDir: s.upper,
		Args:     args,
		Env:      []string{"PATH=/bin"},
		StateDir: s.state,
	}
}

// run runs spec and returns its stdout and stderr.
func run(t testing.TB, spec executor.Spec) (stdout, stderr string, err error) {
	t.Helper()
	var o, e bytes.Buffer
	spec.Stdout, spec.Stderr = &o, &e
	err = executor.Run(context.Background(), spec)
	return o.String(), e.String(), err
}

// mustRun runs spec, fails the test on error, and returns trimmed stdout.
func mustRun(t testing.TB, spec executor.Spec) string {
	t.Helper()
	out, errOut, err := run(t, spec)
	if err != nil {
		t.Fatalf("Run(%q) = %v; stderr: %s", spec.Args, err, errOut)
	}
	return strings.TrimSpace(out)
}
