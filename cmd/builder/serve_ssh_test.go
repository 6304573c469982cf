package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/builder-dev/builder/internal/testutil"
)

// TestServeSSH forwards the client's SSH agent to a RUN step on the
// server: ssh-add -l in the step lists the client's key through the
// forwarded socket, and a required agent the client did not give fails
// the build.
func TestServeSSH(t *testing.T) {
	testutil.RequiresRoot(t)
	srv := cli{t: t, bin: builderBinary(t), root: t.TempDir()}
	host := startServer(t, srv)
	sock := testutil.StartSSHAgent(t, "builder-served-key")
	dir, sshAdd := testutil.SSHAddContext(t)
	bb, err := os.ReadFile(testutil.BusyboxPath)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "busybox"), bb, 0o755)
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY busybox /bin/busybox\n"+
		"RUN --mount=type=bind,source=sshroot,target=/sshroot --mount=type=ssh,required [\"/bin/busybox\", \"sh\", \"-c\", \""+sshAdd+" -l > /keys; /bin/busybox ls -l $SSH_AUTH_SOCK > /sock\"]\n"), 0o644)
	out := filepath.Join(t.TempDir(), "out")
	client := cli{t: t, bin: srv.bin, root: t.TempDir()}
	_, stderr, code := client.runIn("", []string{"SSH_AUTH_SOCK=" + sock}, "--host", host, "build", "--progress", "plain", "--ssh", "default", "-o", "type=local,dest="+out, dir)
	if code != 0 {
		t.Fatalf("remote build with --ssh: exit %d\n%s", code, stderr)
	}
	if b, err := os.ReadFile(filepath.Join(out, "keys")); err != nil || !strings.Contains(string(b), "builder-served-key") {
		t.Errorf("ssh-add -l on the server listed %q (%v), want the client's key", b, err)
	}
	if b, _ := os.ReadFile(filepath.Join(out, "sock")); !strings.HasPrefix(string(b), "s") {
		t.Errorf("the step's agent socket: %q, want a socket", b)
	}
	_, stderr, code = client.run("--host", host, "build", "--progress", "plain", "--no-cache", dir)
	if code == 0 || !strings.Contains(stderr, "ssh agent default is required") {
		t.Errorf("remote build without --ssh of a required agent: exit %d, want a failure naming the agent:\n%s", code, stderr)
	}
}
