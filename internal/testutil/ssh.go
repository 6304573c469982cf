package testutil

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// StartSSHAgent starts an ssh-agent holding a new key with the given comment
// and returns its socket.
func StartSSHAgent(t testing.TB, comment string) string {
	t.Helper()
	for _, tool := range []string{"ssh-agent", "ssh-add", "ssh-keygen"} {
		RequireTool(t, tool, "openssh-client")
	}
	dir := t.TempDir()
	sock := filepath.Join(dir, "agent.sock")
	agent := exec.Command("ssh-agent", "-D", "-a", sock)
	if err := agent.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		agent.Process.Kill()
		agent.Wait()
	})
	for i := 0; ; i++ {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if i == 100 {
			t.Fatal("ssh-agent did not create its socket")
		}
		time.Sleep(20 * time.Millisecond)
	}
	key := filepath.Join(dir, "id_ed25519")
	if out, err := exec.Command("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment, "-f", key).CombinedOutput(); err != nil {
		t.Fatalf("ssh-keygen: %v\n%s", err, out)
	}
	add := exec.Command("ssh-add", key)
	add.Env = append(os.Environ(), "SSH_AUTH_SOCK="+sock)
	if out, err := add.CombinedOutput(); err != nil {
		t.Fatalf("ssh-add: %v\n%s", err, out)
	}
	return sock
}

// SSHAddContext copies the host's ssh-add, its dynamic loader and its
// libraries into a build context dir under sshroot/, for running it in a
// busybox image through a bind mount.
func SSHAddContext(t testing.TB) (dir, command string) {
	t.Helper()
	bin, err := exec.LookPath("ssh-add")
	if err != nil {
		t.Skip("ssh-add not found")
	}
	out, err := exec.Command("ldd", bin).Output()
	if err != nil {
		t.Skipf("ldd %s: %v", bin, err)
	}
	dir = t.TempDir()
	copyIn := func(p string) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(dir, "sshroot", filepath.Base(p))
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copyIn(bin)
	loader := ""
	for _, line := range strings.Split(string(out), "\n") {
		for _, f := range strings.Fields(line) {
			if strings.HasPrefix(f, "/") {
				copyIn(f)
				if strings.Contains(f, "ld-linux") {
					loader = filepath.Base(f)
				}
			}
		}
	}
	if loader == "" {
		t.Skipf("no dynamic loader in ldd %s output:\n%s", bin, out)
	}
	return dir, "/sshroot/" + loader + " --library-path /sshroot /sshroot/ssh-add"
}
