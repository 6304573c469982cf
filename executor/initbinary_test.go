package executor

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/builder-dev/builder/executor/mountpoints"
)

func TestUseInitBinary(t *testing.T) {
	defer initBinary.Store("")
	defer mountpoints.Use(mountpoints.Dir()) // UseInitBinary sets it
	dir := filepath.Join(t.TempDir(), "bin")
	p1, err := UseInitBinary(dir, []byte("one"), "")
	if err != nil || initPath() != p1 {
		t.Fatalf("UseInitBinary = %q, %v; initPath() = %q", p1, err, initPath())
	}
	if fi, err := os.Stat(p1); err != nil || fi.Mode().Perm() != 0o755 {
		t.Fatalf("init binary %s: %v %v", p1, fi, err)
	}
	// The same content again: the same file; other content: another.
	if p, err := UseInitBinary(dir, []byte("one"), ""); p != p1 || err != nil {
		t.Errorf("second UseInitBinary = %q, %v; want %q", p, err, p1)
	}
	p2, err := UseInitBinary(dir, []byte("two"), "")
	if err != nil || p2 == p1 || initPath() != p2 {
		t.Errorf("UseInitBinary(other) = %q, %v", p2, err)
	}
	// A truncated file is written anew.
	os.WriteFile(p1, []byte("on"), 0o755)
	if _, err := UseInitBinary(dir, []byte("one"), ""); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(p1); string(b) != "one" {
		t.Errorf("damaged init binary not rewritten: %q", b)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Errorf("%d files in %s, want 2 (no temporary files left)", len(ents), dir)
	}
}
