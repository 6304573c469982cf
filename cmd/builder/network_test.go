package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/builder-dev/builder/internal/testutil"
)

// TestCLINetwork: build --network and its entitlement, run --network.
func TestCLINetwork(t *testing.T) {
	testutil.RequiresRoot(t)
	c := cli{t: t, bin: builderBinary(t), root: t.TempDir()}
	hostNS, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Skip(err)
	}
	dir := busyboxContext(t, `RUN ["/bin/busybox", "sh", "-c", "/bin/busybox ls /sys/class/net > /net"]
`)

	_, stderr, code := c.run("build", "--network=host", dir)
	if code == 0 || !strings.Contains(stderr, "--network=host needs the entitlement: build with --allow network.host") {
		t.Errorf("build --network=host without --allow exited %d:\n%s", code, stderr)
	}
	if _, stderr, code = c.run("build", "--network=none", "-t", "nettest", dir); code != 0 {
		t.Fatalf("build --network=none exited %d:\n%s", code, stderr)
	}
	if stdout, stderr, code := c.run("run", "nettest", "/bin/busybox", "cat", "/net"); code != 0 || stdout != "lo\n" {
		t.Errorf("interfaces in a build --network=none step: %q (exit %d, %s), want lo", stdout, code, stderr)
	}
	if stdout, _, _ := c.run("run", "--network=host", "nettest", "/bin/busybox", "readlink", "/proc/self/ns/net"); strings.TrimSpace(stdout) != hostNS {
		t.Errorf("run --network=host: netns %q, want the host's %s", stdout, hostNS)
	}
	if stdout, _, _ := c.run("run", "--network=none", "nettest", "/bin/busybox", "ls", "/sys/class/net"); stdout != "lo\n" {
		t.Errorf("run --network=none: interfaces %q, want lo", stdout)
	}
	if stdout, _, _ := c.run("run", "nettest", "/bin/busybox", "readlink", "/proc/self/ns/net"); strings.TrimSpace(stdout) == hostNS && haveNetHelper() {
		t.Errorf("run on the default network is in the host's namespace %s", hostNS)
	}

	// Neither helper in $PATH: one warning naming the package, and the
	// step on the host's network. Rootless builder still needs newuidmap.
	path := t.TempDir()
	for _, tool := range []string{"newuidmap", "newgidmap"} {
		if p, err := exec.LookPath(tool); err == nil {
			os.Symlink(p, filepath.Join(path, tool))
		}
	}
	cmd := exec.Command(c.bin, "--root", c.root, "build", "--no-cache", "-t", "nethost", dir)
	cmd.Env = append(os.Environ(), "PATH="+path)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("build without a network helper: %v\n%s", err, out)
	}
	if n := strings.Count(string(out), "apt-get install slirp4netns (or passt)"); n != 1 {
		t.Errorf("build without a network helper printed the warning %d times, want once:\n%s", n, out)
	}
	if stdout, _, _ := c.run("run", "--network=none", "nethost", "/bin/busybox", "cat", "/net"); !strings.Contains(stdout, "lo") || stdout == "lo\n" {
		t.Errorf("interfaces in a step without a network helper: %q, want the host's", stdout)
	}
}

// haveNetHelper reports whether a user-mode network helper is installed
// and can run (it needs /dev/net/tun).
func haveNetHelper() bool {
	tun, err := os.OpenFile("/dev/net/tun", os.O_RDWR, 0)
	if err != nil {
		return false
	}
	tun.Close()
	for _, h := range []string{"slirp4netns", "pasta"} {
		if _, err := exec.LookPath(h); err == nil {
			return true
		}
	}
	return false
}
