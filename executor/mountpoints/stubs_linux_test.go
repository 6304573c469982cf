package mountpoints

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func TestRemoveStubs(t *testing.T) {
	upper := t.TempDir()
	mk := func(p string, content string, dir bool) {
		t.Helper()
		p = filepath.Join(upper, p)
		var err error
		if dir {
			err = os.MkdirAll(p, 0o755)
		} else if err = os.MkdirAll(filepath.Dir(p), 0o755); err == nil {
			err = os.WriteFile(p, []byte(content), 0o644)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	mk("proc", "", true)               // empty stub dir: removed
	mk("dev/kept", "", false)          // stub dir not empty: kept
	mk("etc/hosts", "", false)         // empty stub file: removed, then etc (empty) too
	mk("data/resolv.conf", "x", false) // stub file with content: kept
	target := t.TempDir()
	if err := os.Symlink(target, filepath.Join(upper, "link")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(target, "sys"), 0o755); err != nil {
		t.Fatal(err)
	}
	stubs := []string{"proc", "dev", "etc", "etc/hosts", "data", "data/resolv.conf", "link/sys", "missing", "../escape"}
	if err := RemoveStubs(upper, stubs); err != nil {
		t.Fatalf("RemoveStubs = %v", err)
	}
	for p, wantExist := range map[string]bool{
		"proc": false, "etc": false, "dev/kept": true, "data/resolv.conf": true, "link": true,
	} {
		_, err := os.Lstat(filepath.Join(upper, p))
		if exists := !errors.Is(err, os.ErrNotExist); exists != wantExist {
			t.Errorf("after RemoveStubs, %s exists = %v, want %v", p, exists, wantExist)
		}
	}
	if _, err := os.Stat(filepath.Join(target, "sys")); err != nil {
		t.Errorf("RemoveStubs followed a symlink out of the upper dir: %v", err)
	}
}
