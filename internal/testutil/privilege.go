package testutil

import (
	"os"
	"strings"
	"testing"
)

// The skip helpers of every package's tests. Two levels, because rootless
// mode (root of a user namespace of an ordinary user) can do most but not
// all of what real root can.

// RequiresRoot skips the test unless it runs as root: of the host (CI), or
// of a user namespace (rootless mode, `unshare --user --map-root-user
// --mount`), which is enough for namespaces, mounts and mknod of
// whiteouts.
func RequiresRoot(t testing.TB) {
	t.Helper()
	if euid := os.Geteuid(); euid != 0 {
		t.Skipf("test requires root, or root of a user namespace (running as euid %d); run it as root, as CI does", euid)
	}
}

// RequiresHostRoot skips the test unless it runs as root of the initial
// user namespace, which only real root is: trusted.* xattrs, chown to any
// id.
func RequiresHostRoot(t testing.TB) {
	t.Helper()
	RequiresRoot(t)
	b, err := os.ReadFile("/proc/self/uid_map")
	if err != nil || strings.Join(strings.Fields(string(b)), " ") != "0 0 4294967295" {
		t.Skip("test requires root of the initial user namespace (trusted.* xattrs, chown to any id), not of a user namespace; run it as root")
	}
}
