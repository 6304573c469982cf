package initbin

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/builder-dev/builder/executor/mountpoints"
)

func TestUse(t *testing.T) {
	defer initBinary.Store("")
	defer mountpoints.Use(mountpoints.Dir()) // Use sets it
	dir := filepath.Join(t.TempDir(), "bin")
	p1, err := Use(dir, []byte("one"), "")
	if err != nil || Path() != p1 {
		t.Fatalf("Use = %q, %v; Path() = %q", p1, err, Path())
	}
	if fi, err := os.Stat(p1); err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("init binary %s: %v %v", p1, fi, err)
	}
	// The same content again: the same file; other content: another.
	if p, err := Use(dir, []byte("one"), ""); p != p1 || err != nil {
		t.Errorf("second Use = %q, %v; want %q", p, err, p1)
	}
	p2, err := Use(dir, []byte("two"), "")
	if err != nil || p2 == p1 || Path() != p2 {
		t.Errorf("Use(other) = %q, %v", p2, err)
	}
	// A truncated file is written anew.
	os.WriteFile(p1, []byte("on"), 0o755)
	if _, err := Use(dir, []byte("one"), ""); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p1); string(b) != "one" {
		t.Errorf("damaged init binary not rewritten: %q", b)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Errorf("%d files in %s, want 2 (no temporary files left)", len(ents), dir)
	}
}
