package executor_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/builder-dev/builder/executor"
)

func TestSecretMount(t *testing.T) {
	s := newSandbox(t, newBusyboxRootfs(t))
	secret := fmt.Sprintf("secret-%d-value", time.Now().UnixNano())
	spec := s.spec("sh", "-c", `cat /run/secrets/a; echo; cat /etc/b; echo
stat -c '%a %u %g' /run/secrets/a /etc/b
grep -E ' /(run/secrets/a|etc/b) ' /proc/mounts | { while read d m t o r; do echo "$m $t ${o%%,*}"; done; }
echo x 2>/dev/null > /run/secrets/a || echo read-only`)
	spec.RunMounts = []executor.Mount{
		{Type: executor.MountSecret, Target: "/run/secrets/a", Data: []byte(secret), Mode: 0o400, Readonly: true},
		{Type: executor.MountSecret, Target: "/etc/b", Data: []byte("second"), UID: 1000, GID: 2000, Mode: 0o440, Readonly: true},
	}
	want := secret + "\nsecond\n400 0 0\n440 1000 2000\n/run/secrets/a tmpfs ro\n/etc/b tmpfs ro\nread-only"
	if got := mustRun(t, spec); got != want {
		t.Errorf("secret mounts printed\n%s\nwant\n%s", got, want)
	}
	checkNoSecret(t, filepath.Dir(s.upper), secret)
	if b, err := json.Marshal(spec); err != nil || bytes.Contains(b, []byte(secret)) {
		t.Errorf("the spec's JSON holds the secret (%v): %s", err, b)
	}
}

// TestSecretGoneAfterParentKilled: SIGKILL of the builder in the middle of
// a step that holds a secret leaves no byte of it on disk.
func TestSecretGoneAfterParentKilled(t *testing.T) {
	s := newSandbox(t, newBusyboxRootfs(t))
	secret := fmt.Sprintf("killed-secret-%d", time.Now().UnixNano())
	spec := s.spec("sh", "-c", "cat /run/secrets/s >/dev/null && echo ready && exec sleep 100")
	spec.RunMounts = []executor.Mount{{Type: executor.MountSecret, Target: "/run/secrets/s", Mode: 0o400, Readonly: true}}
	specJSON, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	helper := exec.Command(os.Args[0])
	helper.Env = append(os.Environ(), helperSpecEnv+"="+string(specJSON), helperSecretEnv+"="+secret)
	helper.Stderr = os.Stderr
	out, err := helper.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	ready := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(out).ReadString('\n')
		ready <- line
	}()
	select {
	case line := <-ready:
		if line != "ready\n" {
			t.Errorf("sandbox printed %q, want ready", line)
		}
	case <-time.After(10 * time.Second):
		t.Error("sandbox did not read its secret in 10s")
	}
	helper.Process.Kill()
	helper.Wait()
	checkNoSecret(t, filepath.Dir(s.upper), secret)
}

// checkNoSecret fails if any file under dir holds secret.
func checkNoSecret(t *testing.T, dir, secret string) {
	t.Helper()
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return nil
		}
		if b, err := os.ReadFile(p); err == nil && bytes.Contains(b, []byte(secret)) {
			t.Errorf("%s holds the secret", strings.TrimPrefix(p, dir))
		}
		return nil
	})
}
