package mountpoints

import (
	"io/fs"
	"os"
	"path/filepath"
	"syscall"
	"testing"
)

// The layer's modes are those an image expects, whatever builder's umask,
// and a layer that is not exactly as made is made again.
func TestLayerModes(t *testing.T) {
	dir := t.TempDir()
	old := syscall.Umask(0o077)
	layer, err := makeLayer(dir)
	syscall.Umask(old)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]fs.FileMode{"": fs.ModeDir | 0o755, "etc/hosts": 0o644}
	for _, e := range entries {
		want[e] = entryMode(e)
	}
	for e, m := range want {
		fi, err := os.Lstat(filepath.Join(layer, e))
		if err != nil || fi.Mode() != m {
			t.Errorf("%s made under umask 077: %v, %v; want %v", e, fi.Mode(), err, m)
		}
	}

	for name, change := range map[string]func(){
		"extra file":  func() { os.WriteFile(filepath.Join(layer, "etc/passwd"), nil, 0o644) },
		"mode":        func() { os.Chmod(filepath.Join(layer, "etc"), 0o700) },
		"missing":     func() { os.Remove(filepath.Join(layer, "sys")) },
		"not empty":   func() { os.WriteFile(filepath.Join(layer, "etc/hosts"), []byte("evil"), 0o644) },
		"symlink dir": func() { os.Remove(filepath.Join(layer, "proc")); os.Symlink("/", filepath.Join(layer, "proc")) },
	} {
		change()
		if checkLayer(layer) == nil {
			t.Errorf("%s: checkLayer accepts the changed layer", name)
		}
		again, err := makeLayer(dir)
		if err != nil || again != layer {
			t.Fatalf("%s: makeLayer = %s, %v; want %s made again", name, again, err, layer)
		}
		if err := checkLayer(layer); err != nil {
			t.Errorf("%s: the layer made again: %v", name, err)
		}
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Errorf("state dir after the remakes holds %v, want the layer only", ents)
	}
}
