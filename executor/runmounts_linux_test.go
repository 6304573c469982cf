package executor_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/builder-dev/builder/executor"
	"github.com/builder-dev/builder/internal/userns"
	"github.com/builder-dev/builder/snapshot"
)

func TestRunMounts(t *testing.T) {
	s := newSandbox(t, newBusyboxRootfs(t))
	layer := t.TempDir()
	os.MkdirAll(filepath.Join(layer, "sub"), 0o755)
	os.WriteFile(filepath.Join(layer, "sub", "f"), []byte("in layer\n"), 0o644)
	spec := s.spec("sh", "-c", "cat /from/f; echo x > /from/g 2>/dev/null || echo read-only; grep ' /tmpfs ' /proc/mounts | { read a b c r; echo $a $b $c; }; echo t > /tmpfs/t && echo tmpfs-writable")
	spec.RunMounts = []executor.Mount{
		{Type: executor.MountLayers, Layers: []snapshot.Mount{{Type: "bind", Source: layer, Options: []string{"rbind", "ro"}}}, Source: "sub", Target: "/from", Readonly: true},
		{Type: executor.MountTmpfs, Target: "/tmpfs", Size: 1 << 20},
	}
	if got := mustRun(t, spec); got != "in layer\nread-only\ntmpfs /tmpfs tmpfs\ntmpfs-writable" {
		t.Errorf("run mounts printed %q", got)
	}
	for _, p := range []string{"from", "tmpfs"} {
		if _, err := os.Lstat(filepath.Join(s.upper, p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("mountpoint /%s left in the upper dir (Lstat: %v)", p, err)
		}
	}
}

func TestNetworkNone(t *testing.T) {
	s := newSandbox(t, newBusyboxRootfs(t))
	spec := s.spec("sh", "-c", "ls /sys/class/net; cat /sys/class/net/lo/flags")
	spec.Network = executor.NetworkNone
	got := strings.Fields(mustRun(t, spec))
	if len(got) != 2 || got[0] != "lo" || got[1] != "0x9" {
		t.Errorf("--network=none interfaces and lo flags = %q, want [lo 0x9] (up, loopback)", got)
	}
}

func TestInsecure(t *testing.T) {
	s := newSandbox(t, newBusyboxRootfs(t))
	host, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	spec := s.spec("sh", "-c", "grep CapBnd /proc/self/status; grep -c ' /proc/keys ' /proc/mounts")
	spec.Insecure = true
	out, _, _ := run(t, spec) // grep -c exits 1 when it counts 0
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 2 || statusField(lines[0], "CapBnd") != statusField(string(host), "CapBnd") || lines[1] != "0" {
		t.Errorf("insecure sandbox: %q, want the host's bounding set (%s) and nothing masked", lines, statusField(string(host), "CapBnd"))
	}
	if userns.Rootless() {
		return // no mknod in a user namespace
	}
	// It keeps its devices (losetup for disk images), as before.
	for _, dir := range []string{"/tmp", "/dev"} {
		spec = s.spec("sh", "-c", "mknod "+dir+"/z c 1 3 && echo x > "+dir+"/z && echo opened")
		spec.Insecure = true
		if got := mustRun(t, spec); got != "opened" {
			t.Errorf("insecure sandbox, device node in %s: %q, want opened", dir, got)
		}
	}
}
