package cachedir

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/builder-dev/builder/llb"
)

// TestGraphUses: the cache mounts of a graph without from= are found,
// each once, keyed by their id (default: target) as Acquire's callers key
// them; a from= cache and other mounts are not.
func TestGraphUses(t *testing.T) {
	base := llb.NewVertex(llb.ImageOp{Ref: "busybox"}, nil, llb.Meta{})
	run1 := llb.NewVertex(llb.ExecOp{Args: []string{"a"}, Mounts: []llb.ExecMount{
		{Type: llb.MountCache, Target: "/root/.cache/go-build"},
		{Type: llb.MountCache, Target: "/x", ID: "pkgs", Sharing: llb.SharingLocked},
		{Type: llb.MountTmpfs, Target: "/tmp"},
	}}, []*llb.Vertex{base}, llb.Meta{})
	run2 := llb.NewVertex(llb.ExecOp{Args: []string{"b"}, Mounts: []llb.ExecMount{
		{Type: llb.MountCache, Target: "/y", ID: "pkgs"},
		{Type: llb.MountCache, Target: "/seeded", Input: 1},
	}}, []*llb.Vertex{run1, base}, llb.Meta{})
	got := GraphUses([]*llb.Vertex{run2})
	want := map[string]string{Key("/root/.cache/go-build").Encoded(): "/root/.cache/go-build", Key("pkgs").Encoded(): "pkgs"}
	if len(got) != len(want) {
		t.Fatalf("uses %+v, want %v", got, want)
	}
	for _, u := range got {
		if want[u.Key] != u.ID {
			t.Errorf("use %+v: want key %s for it", u, Key(u.ID).Encoded())
		}
	}
	if Key("pkgs") != llb.DigestStrings("cache", "pkgs") {
		t.Error("Key changed: every cache mount on every machine would start cold")
	}
}

// TestReader: a cache never made is fs.ErrNotExist, without creating
// anything; a made one is locked shared and its copy 0 returned.
func TestReader(t *testing.T) {
	root := t.TempDir()
	u := Use{Key: "k", ID: "/cache"}
	if _, _, err := Reader(t.Context(), root, u); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("Reader of a missing cache: %v", err)
	}
	if entries, _ := os.ReadDir(root); len(entries) != 0 {
		t.Errorf("Reader of a missing cache made %v", entries)
	}
	os.MkdirAll(filepath.Join(root, "k", "0"), 0o755)
	dir, unlock, err := Reader(t.Context(), root, u)
	if err != nil || dir != filepath.Join(root, "k", "0") {
		t.Fatalf("Reader = %s, %v", dir, err)
	}
	unlock()
}
