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

// A claimed directory is not removed; a released one is listed with its
// size and removed; a claimer learns whether another changed it.
func TestDirUse(t *testing.T) {
	parent := t.TempDir()
	dir := filepath.Join(parent, "p")
	os.Mkdir(dir, 0o700)
	u, ok, err := TryUseDir(dir)
	if err != nil || !ok {
		t.Fatalf("TryUseDir = %v, %v", ok, err)
	}
	if _, ok, err := TryUseDir(dir); ok || err != nil {
		t.Errorf("a second claim on a claimed directory = %v, %v; want refused", ok, err)
	}
	if removed, err := RemoveUnusedDir(dir); removed || err != nil || !exists(dir) {
		t.Errorf("RemoveUnusedDir of a claimed directory = %v, %v", removed, err)
	}
	token, err := u.Release(1234)
	if err != nil || token == "" {
		t.Fatalf("Release = %q, %v", token, err)
	}
	u, ok, _ = TryUseDir(dir)
	if !ok || u.Token != token {
		t.Errorf("a claim after a release sees token %q, want %q", u.Token, token)
	}
	u.Release(1234)
	dirs, err := UsedDirs(parent)
	if err != nil || len(dirs) != 1 || dirs[0].Size != 1234 || time.Since(dirs[0].LastUsed) > time.Minute {
		t.Errorf("UsedDirs = %+v, %v; want the directory, 1234 bytes, used just now", dirs, err)
	}
	if removed, err := RemoveUnusedDir(dir); !removed || err != nil || exists(dir) || exists(dir+".use") {
		t.Errorf("RemoveUnusedDir of an unclaimed directory = %v, %v", removed, err)
	}
}
