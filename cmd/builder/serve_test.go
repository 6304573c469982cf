package main

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/builder-dev/builder/internal/testutil"
)

// startServer runs `builder serve` on a UNIX socket in a temp dir and
// returns its --host value. The test's clients keep their file digest
// cache in a temp dir too.
func startServer(t *testing.T, c cli, extra ...string) string {
	t.Helper()
	host, _ := startServerCmd(t, c, extra...)
	return host
}

// startServerCmd is startServer that also returns the server's process.
func startServerCmd(t *testing.T, c cli, extra ...string) (string, *exec.Cmd) {
	t.Helper()
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	sock := filepath.Join(t.TempDir(), "builder.sock")
	cmd := exec.Command(c.bin, append([]string{"--root", c.root, "serve", "--addr", "unix://" + sock}, extra...)...)
	var log bytes.Buffer
	cmd.Stderr = &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("server log:\n%s", log.String())
		}
	})
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if conn, err := net.Dial("unix", sock); err == nil {
			conn.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the server did not listen on %s", sock)
		}
	}
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o660 {
		t.Errorf("socket mode = %v, want 0660", fi.Mode().Perm())
	}
	return "unix://" + sock, cmd
}

func busyboxContext(t *testing.T, dockerfile string) string {
	t.Helper()
	dir := t.TempDir()
	bb, err := os.ReadFile(testutil.BusyboxPath)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "busybox"), bb, 0o755)
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY busybox /bin/busybox\n"+dockerfile), 0o644)
	return dir
}

// waitFor reads a build's output into seen until it holds marker (not
// literally in the Dockerfile: the progress output echoes commands).
func waitFor(t *testing.T, r io.Reader, seen *strings.Builder, marker string) {
	t.Helper()
	buf := make([]byte, 64<<10)
	for !strings.Contains(seen.String(), marker) {
		n, err := r.Read(buf)
		if err != nil {
			t.Fatalf("build ended before %s: %v\n%s", marker, err, seen.String())
		}
		seen.Write(buf[:n])
	}
}

var syncedRE = regexp.MustCompile(`context sync: uploaded (\d+) files, (\d+) bytes`)

// TestServeBuild builds through a server what a local build builds: the
// same image digest, a local output on the client, and a rebuild after
// touching one file uploads that file only.
func TestServeBuild(t *testing.T) {
	testutil.RequiresRoot(t)
	t.Setenv("SOURCE_DATE_EPOCH", "1700000000")
	srv := cli{t: t, bin: builderBinary(t), root: t.TempDir()}
	host := startServer(t, srv)
	dir := busyboxContext(t, "RUN [\"/bin/busybox\", \"sh\", \"-c\", \"/bin/busybox echo ran > /r\"]\nCOPY a.txt /a.txt\n")
	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("one\n"), 0o644)
	client := cli{t: t, bin: srv.bin, root: t.TempDir()} // its state dir must stay unused
	out := filepath.Join(t.TempDir(), "out")
	iid := filepath.Join(t.TempDir(), "iid")
	_, stderr, code := client.run("--host", host, "build", "--progress", "plain", "-t", "served:v1", "-o", "type=local,dest="+out, "--iidfile", iid, dir)
	if code != 0 {
		t.Fatalf("remote build: exit %d\n%s", code, stderr)
	}
	if !strings.Contains(stderr, "RUN [\"/bin/busybox\"") {
		t.Errorf("remote build's progress lacks the RUN step:\n%s", stderr)
	}
	m := syncedRE.FindStringSubmatch(stderr)
	if m == nil || m[1] != "3" {
		t.Errorf("first build synced %v, want 3 files (Dockerfile, busybox, a.txt):\n%s", m, stderr)
	}
	for f, want := range map[string]string{"r": "ran\n", "a.txt": "one\n"} {
		if b, err := os.ReadFile(filepath.Join(out, f)); err != nil || string(b) != want {
			t.Errorf("local output %s = %q, %v; want %q", f, b, err, want)
		}
	}
	remoteID, err := os.ReadFile(iid)
	if err != nil {
		t.Fatal(err)
	}
	local := cli{t: t, bin: srv.bin, root: t.TempDir()}
	localID, stderr, code := local.run("build", "--progress", "quiet", dir)
	if code != 0 {
		t.Fatalf("local build: exit %d\n%s", code, stderr)
	}
	if strings.TrimSpace(localID) != string(remoteID) {
		t.Errorf("remote build's image %s, local build's %s: want the same", remoteID, localID)
	}
	// The image is in the server's store.
	images, _, _ := srv.run("images")
	if !strings.Contains(images, "served") {
		t.Errorf("server's images lack %s:\n%s", remoteID, images)
	}

	os.WriteFile(filepath.Join(dir, "a.txt"), []byte("two!\n"), 0o644)
	_, stderr, code = client.run("--host", host, "build", "--progress", "plain", dir)
	if code != 0 {
		t.Fatalf("second remote build: exit %d\n%s", code, stderr)
	}
	if m := syncedRE.FindStringSubmatch(stderr); m == nil || m[1] != "1" || m[2] != "5" {
		t.Errorf("rebuild after touching a.txt synced %v, want 1 file of 5 bytes:\n%s", m, stderr)
	}
	if !strings.Contains(stderr, "CACHED") {
		t.Errorf("rebuild reused nothing:\n%s", stderr)
	}
}

// TestServeClientCancel interrupts a client while its RUN step runs on the
// server: the step's process must go, and the server keep serving.
func TestServeClientCancel(t *testing.T) {
	testutil.RequiresRoot(t)
	srv := cli{t: t, bin: builderBinary(t), root: t.TempDir()}
	host := startServer(t, srv)
	marker := fmt.Sprintf("sleep 47%d", time.Now().UnixNano()%1000)
	dir := busyboxContext(t, "RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo ready$((6*7)); /bin/busybox "+marker+"\"]\n")
	cmd := exec.Command(srv.bin, "--host", host, "build", "--progress", "plain", dir)
	out, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var seen strings.Builder
	waitFor(t, out, &seen, "ready42")
	// The shell printed; it may still be exec'ing the sleep (its command
	// line is briefly neither), so look for a while.
	alive := sandboxAlive(marker)
	for wait := time.Now().Add(10 * time.Second); !alive && time.Now().Before(wait); alive = sandboxAlive(marker) {
		time.Sleep(20 * time.Millisecond)
	}
	if !alive {
		t.Fatalf("the RUN step's process (%s) is not running on the server:\n%s", marker, seen.String())
	}
	cmd.Process.Signal(os.Interrupt)
	cmd.Wait()
	deadline := time.Now().Add(10 * time.Second)
	for sandboxAlive(marker) {
		if time.Now().After(deadline) {
			t.Fatal("the RUN step's process outlived its cancelled client")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// The server is still there.
	dir2 := busyboxContext(t, "RUN [\"/bin/busybox\", \"true\"]\n")
	if _, stderr, code := srv.run("--host", host, "build", dir2); code != 0 {
		t.Fatalf("build after a cancelled one: exit %d\n%s", code, stderr)
	}
}

// TestServeSecretAndErrors sends a secret with a remote build: the server
// asks for it when the step that uses it starts (the client's file is
// changed while an earlier step runs, and the step sees the new value), no
// file under the server's state dir holds it while the step runs or
// afterwards, and a tar output lands on the client. A failing build exits
// and reports as a local one does.
func TestServeSecretAndErrors(t *testing.T) {
	testutil.RequiresRoot(t)
	srv := cli{t: t, bin: builderBinary(t), root: t.TempDir()}
	host := startServer(t, srv)
	early := fmt.Sprintf("Early-%d-Value", time.Now().UnixNano())
	secret := fmt.Sprintf("Secret-%d-Value", time.Now().UnixNano())
	sum := sha256.Sum256([]byte(secret))
	secretFile := filepath.Join(t.TempDir(), "s")
	os.WriteFile(secretFile, []byte(early), 0o600)
	dir := busyboxContext(t, "RUN [\"/bin/busybox\", \"sh\", \"-c\", \"echo first$((6*7)); /bin/busybox sleep 2\"]\n"+
		"RUN --mount=type=secret,id=s,required [\"/bin/busybox\", \"sh\", \"-c\", \"/bin/busybox sha256sum /run/secrets/s > /sum; echo ready$((6*7)); /bin/busybox sleep 2\"]\n")
	tarOut := filepath.Join(t.TempDir(), "out.tar")
	cmd := exec.Command(srv.bin, "--host", host, "build", "--progress", "plain", "--secret", "id=s,src="+secretFile, "-o", "type=tar,dest="+tarOut, dir)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var seen strings.Builder
	waitFor(t, stderr, &seen, "first42")
	os.WriteFile(secretFile, []byte(secret), 0o600)
	noSecret := func(when string) {
		files := 0
		filepath.WalkDir(srv.root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.Type().IsRegular() {
				files++
				if b, err := os.ReadFile(p); err == nil && (bytes.Contains(b, []byte(secret)) || bytes.Contains(b, []byte(early))) {
					t.Errorf("%s on the server holds the secret %s", p, when)
				}
			}
			return nil
		})
		if files == 0 {
			t.Fatalf("no files under the server's state dir %s: nothing was checked", srv.root)
		}
	}
	waitFor(t, stderr, &seen, "ready42")
	noSecret("while the step runs")
	rest, _ := io.ReadAll(stderr)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("remote build with a secret: %v\n%s%s", err, seen.String(), rest)
	}
	tb, err := os.ReadFile(tarOut)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Contains(tb, []byte(hex.EncodeToString(sum[:]))) {
		t.Errorf("the tar output lacks the sha256 of the secret as the step started (%d bytes): was it read when the build started?", len(tb))
	}
	noSecret("after the build")
	client := cli{t: t, bin: srv.bin, root: t.TempDir()}

	bad := busyboxContext(t, "RUN [\"/bin/busybox\", \"sh\", \"-c\", \"exit 3\"]\n")
	_, remoteErr, remoteCode := client.run("--host", host, "build", bad)
	_, localErr, localCode := cli{t: t, bin: srv.bin, root: t.TempDir()}.run("build", bad)
	errLine := func(s string) string {
		for _, l := range strings.Split(s, "\n") {
			if strings.HasPrefix(l, "ERROR:") {
				return l
			}
		}
		return ""
	}
	if remoteCode != localCode || remoteCode == 0 {
		t.Errorf("failing build: remote exit %d, local exit %d; want the same, non-zero", remoteCode, localCode)
	}
	if errLine(remoteErr) == "" || errLine(remoteErr) != errLine(localErr) {
		t.Errorf("failing build: remote says %q, local says %q", errLine(remoteErr), errLine(localErr))
	}
}
