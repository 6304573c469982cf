package main

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/builder-dev/builder/internal/testutil"
)

// TestKilledBuildLeavesNoSecret SIGKILLs the builder while a RUN step holds
// a secret mount, and checks that no byte of the secret is anywhere under
// the state dir: the secret lived on the sandbox's own tmpfs only.
func TestKilledBuildLeavesNoSecret(t *testing.T) {
	testutil.RequiresRoot(t)
	c := cli{t: t, bin: builderBinary(t), root: t.TempDir()}
	dir := t.TempDir()
	bb, err := os.ReadFile(testutil.BusyboxPath)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "busybox"), bb, 0o755)
	secret := fmt.Sprintf("Secret-%d-Value", time.Now().UnixNano())
	secretFile := filepath.Join(t.TempDir(), "s")
	os.WriteFile(secretFile, []byte(secret), 0o600)
	marker := "sleep 4343"
	os.WriteFile(filepath.Join(dir, "Dockerfile"), []byte("FROM scratch\nCOPY busybox /bin/busybox\n"+
		"RUN --mount=type=secret,id=s,required [\"/bin/busybox\", \"sh\", \"-c\", \"/bin/busybox cat /run/secrets/s >/dev/null && echo ready$((6*7)); /bin/busybox "+marker+"\"]\n"), 0o644)

	cmd := exec.Command(c.bin, "--root", c.root, "build", "--progress", "plain", "--secret", "id=s,src="+secretFile, dir)
	out, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 64<<10)
	var seen strings.Builder
	// Not "ready42" literally: the progress output echoes the command.
	for !strings.Contains(seen.String(), "ready42") {
		n, err := out.Read(buf)
		if err != nil {
			t.Fatalf("build ended before its RUN started: %v\n%s", err, seen.String())
		}
		seen.Write(buf[:n])
	}
	cmd.Process.Kill()
	cmd.Wait()
	deadline := time.Now().Add(5 * time.Second)
	for sandboxAlive(marker) {
		if time.Now().After(deadline) {
			t.Fatal("the RUN step's process outlived the killed builder")
		}
		time.Sleep(20 * time.Millisecond)
	}
	files := 0
	filepath.WalkDir(c.root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		files++
		if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(secret)) {
			t.Errorf("%s holds the secret after the builder was killed", strings.TrimPrefix(p, c.root))
		}
		return nil
	})
	if files == 0 {
		t.Fatalf("no files under the state dir %s: nothing was checked", c.root)
	}
}
