package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/builder-dev/builder/internal/testutil"
)

// TestServeBuildContextAndCheck: a directory --build-context is synced to
// the server as the main context is (a rebuild after touching one of its
// files uploads that file), an OCI layout one is refused with the reason,
// buildx flags such as --add-host and --ulimit reach the server's steps,
// --load is refused with the reason, and --check prints what a local
// --check prints, with its exit code.
func TestServeBuildContextAndCheck(t *testing.T) {
	testutil.RequiresRoot(t)
	srv := cli{t: t, bin: builderBinary(t), root: t.TempDir()}
	host := startServer(t, srv)
	client := cli{t: t, bin: srv.bin, root: t.TempDir()}
	dir := busyboxContext(t, "COPY --from=extra e.txt /e.txt\n")
	extra := t.TempDir()
	os.WriteFile(filepath.Join(extra, "e.txt"), []byte("extra one\n"), 0o644)
	os.WriteFile(filepath.Join(extra, "big"), []byte(strings.Repeat("x", 100000)), 0o644)
	out := filepath.Join(t.TempDir(), "out")
	build := func(n int) string {
		_, stderr, code := client.run("--host", host, "build", "--progress", "plain", "--build-context", "extra="+extra, "-o", "type=local,dest="+out, dir)
		if code != 0 {
			t.Fatalf("remote build %d with --build-context: exit %d\n%s", n, code, stderr)
		}
		return stderr
	}
	build(1)
	if b, _ := os.ReadFile(filepath.Join(out, "e.txt")); string(b) != "extra one\n" {
		t.Errorf("e.txt from the named context = %q", b)
	}
	os.WriteFile(filepath.Join(extra, "e.txt"), []byte("extra two\n"), 0o644)
	stderr := build(2)
	if b, _ := os.ReadFile(filepath.Join(out, "e.txt")); string(b) != "extra two\n" {
		t.Errorf("e.txt from the named context after a change = %q", b)
	}
	if m := syncedRE.FindStringSubmatch(stderr); m == nil || m[1] != "1" || m[2] != "10" {
		t.Errorf("rebuild after touching e.txt synced %v, want 1 file of 10 bytes:\n%s", m, stderr)
	}
	_, stderr, code := client.run("--host", host, "build", "--build-context", "extra=oci-layout://"+extra, dir)
	if code == 0 || !strings.Contains(stderr, "not supported with --host") {
		t.Errorf("--build-context oci-layout:// with --host: exit %d, want a refusal saying why:\n%s", code, stderr)
	}

	// buildx flags are forwarded; --load, which would reach the server's
	// Docker, is refused saying what to do instead.
	hostsDir := busyboxContext(t, `RUN ["/bin/busybox", "sh", "-c", "/bin/busybox grep docs.example /etc/hosts > /hosts; ulimit -Hn > /nofile"]`+"\n")
	_, stderr, code = client.run("--host", host, "build", "--add-host", "docs.example:10.1.2.3", "--ulimit", "nofile=1024:2048", "-o", "type=local,dest="+out, hostsDir)
	if code != 0 {
		t.Fatalf("remote build with --add-host and --ulimit: exit %d\n%s", code, stderr)
	}
	for f, want := range map[string]string{"hosts": "10.1.2.3", "nofile": "2048"} {
		if b, _ := os.ReadFile(filepath.Join(out, f)); !strings.Contains(string(b), want) {
			t.Errorf("%s written by the remote step = %q, want %s", f, b, want)
		}
	}
	_, stderr, code = client.run("--host", host, "build", "--load", hostsDir)
	if code == 0 || !strings.Contains(stderr, "--load is not supported with --host: ") || !strings.Contains(stderr, "type=docker") {
		t.Errorf("--load with --host: exit %d, want a refusal saying why:\n%s", code, stderr)
	}

	bad := filepath.Join(dir, "Dockerfile.bad")
	os.WriteFile(bad, []byte("FROM scratch as base\nCOPY busybox /\nMAINTAINER me\n"), 0o644)
	good := filepath.Join(dir, "Dockerfile.good")
	os.WriteFile(good, []byte("FROM scratch\nCOPY busybox /\n"), 0o644)
	local := cli{t: t, bin: srv.bin, root: t.TempDir()}
	for _, df := range []string{bad, good} {
		lout, _, lcode := local.run("build", "--check", "-f", df, dir)
		rout, rerr, rcode := client.run("--host", host, "build", "--check", "-f", df, dir)
		if rout != lout || rcode != lcode || !strings.Contains(lout, "Check complete") {
			t.Errorf("--check -f %s: remote exit %d stdout %q, local exit %d stdout %q\nremote stderr:\n%s", filepath.Base(df), rcode, rout, lcode, lout, rerr)
		}
	}
}
