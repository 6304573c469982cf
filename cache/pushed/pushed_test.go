package pushed

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
)

// TestPushedRecord: Remember adds to what Read returns, per
// repository; a torn record (a crash while the rename was not yet
// durable) reads as what survived of it, never as an error.
func TestPushedRecord(t *testing.T) {
	dir := t.TempDir()
	a, b := digest.FromString("a"), digest.FromString("b")
	if err := Remember(dir, "reg/app", []digest.Digest{a}); err != nil {
		t.Fatal(err)
	}
	if err := Remember(dir, "reg/app", []digest.Digest{b}); err != nil {
		t.Fatal(err)
	}
	if got := Read(dir, "reg/app"); !got[a] || !got[b] || len(got) != 2 {
		t.Errorf("Read(reg/app) = %v, want %s and %s", got, a, b)
	}
	if got := Read(dir, "reg/other"); len(got) != 0 {
		t.Errorf("Read(reg/other) = %v, want none", got)
	}
	p := path(dir, "reg/app")
	raw, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, raw[:len(raw)-10], 0o600); err != nil {
		t.Fatal(err)
	}
	if got := Read(dir, "reg/app"); len(got) != 1 || !got[b] {
		t.Errorf("Read of a torn record = %v, want only %s", got, b)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(p), ".tmp-*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}
