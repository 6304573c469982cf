package sandboxinit

import (
	"os"
	"path/filepath"
	"testing"
)

func TestLookPath(t *testing.T) {
	if p, err := lookPath("/abs/x", nil); err != nil || p != "/abs/x" {
		t.Errorf("lookPath(/abs/x) = %q, %v", p, err)
	}
	dir := t.TempDir()
	exe := filepath.Join(dir, "tool")
	if err := os.WriteFile(exe, nil, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "noexec"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	env := []string{"A=1", "PATH=/nonexistent:" + dir, "PATH=/other"}
	if p, err := lookPath("tool", env); err != nil || p != exe {
		t.Errorf("lookPath(tool) = %q, %v; want %q", p, err, exe)
	}
	if _, err := lookPath("noexec", env); err == nil {
		t.Errorf("lookPath(noexec) found a non-executable file")
	}
}
