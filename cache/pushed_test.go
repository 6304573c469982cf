package cache

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/opencontainers/go-digest"
)

// TestPushedRecord: RememberPushed adds to what Pushed returns, per
// repository; a torn record (a crash while the rename was not yet
// durable) reads as what survived of it, never as an error.
func TestPushedRecord(t *testing.T) {
	d := &DB{root: t.TempDir()}
	a, b := digest.FromString("a"), digest.FromString("b")
	if err := d.RememberPushed("reg/app", []digest.Digest{a}); err != nil {
		t.Fatal(err)
	}
	if err := d.RememberPushed("reg/app", []digest.Digest{b}); err != nil {
		t.Fatal(err)
	}
	if got := d.Pushed("reg/app"); !got[a] || !got[b] || len(got) != 2 {
		t.Errorf("Pushed(reg/app) = %v, want %s and %s", got, a, b)
	}
	if got := d.Pushed("reg/other"); len(got) != 0 {
		t.Errorf("Pushed(reg/other) = %v, want none", got)
	}
	path := d.pushedPath("reg/app")
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, raw[:len(raw)-10], 0o600); err != nil {
		t.Fatal(err)
	}
	if got := d.Pushed("reg/app"); len(got) != 1 || !got[b] {
		t.Errorf("Pushed of a torn record = %v, want only %s", got, b)
	}
	if left, _ := filepath.Glob(filepath.Join(filepath.Dir(path), ".tmp-*")); len(left) > 0 {
		t.Errorf("temporary files left: %v", left)
	}
}
