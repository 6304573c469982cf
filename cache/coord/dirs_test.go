package coord

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// Two servers on one state directory keep their build directories apart;
// one that starts removes only what a dead one left.
func TestOwnedDirs(t *testing.T) {
	parent := t.TempDir()
	a, err := NewOwnedDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	if err := os.WriteFile(filepath.Join(a.Path, "build-1"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	// A dead owner: its lock is gone, its directory left.
	dead, err := NewOwnedDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	dead.owner.Close()
	// From a builder before owners: no .owner, old and new.
	legacyOld, legacyNew := filepath.Join(parent, "build-old"), filepath.Join(parent, "build-new")
	for _, p := range []string{legacyOld, legacyNew} {
		if err := os.Mkdir(p, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	hourAgo := time.Now().Add(-time.Hour)
	os.Chtimes(legacyOld, hourAgo, hourAgo)

	b, err := NewOwnedDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if !exists(filepath.Join(a.Path, "build-1")) {
		t.Error("a second owner removed the first one's directory")
	}
	if exists(dead.Path) {
		t.Error("the directory of a dead owner is left")
	}
	if exists(legacyOld) || !exists(legacyNew) {
		t.Errorf("an old directory without owner is left (%v) or a new one removed (%v)", exists(legacyOld), !exists(legacyNew))
	}
	if err := b.Close(); err != nil || exists(b.Path) {
		t.Errorf("Close left %s: %v", b.Path, err)
	}
}
