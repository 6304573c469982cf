package mountpoints

import (
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/builder-dev/builder/snapshot"
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

// The layer is added only where the kernel takes one more lower layer.
func TestFits(t *testing.T) {
	page := os.Getpagesize()
	layer := "/var/lib/builder/mountpoints-2"
	lowers := func(n int) string {
		l := make([]string, n)
		for i := range l {
			l[i] = "/l"
		}
		return strings.Join(l, ":")
	}
	// filler is options of n bytes.
	filler := func(n int) []string {
		return []string{"x=" + strings.Repeat("a", n-len("x=,lowerdir=/a")), "lowerdir=/a"}
	}
	for _, c := range []struct {
		opts  []string
		lower string
		want  bool
	}{
		{[]string{"lowerdir=/a:/b", "upperdir=/u", "workdir=/w"}, "/a:/b", true},
		{[]string{"lowerdir=" + lowers(499)}, lowers(499), true},
		{[]string{"lowerdir=" + lowers(500)}, lowers(500), false},
		// The options with the layer and a NUL, one byte short of the
		// page: fit; one byte more: do not (a byte of margin).
		{filler(page - 2 - len(":"+layer)), "/a", true},
		{filler(page - 1 - len(":"+layer)), "/a", false},
	} {
		if got := fits(c.opts, c.lower, layer); got != c.want {
			t.Errorf("fits(%d bytes of options, %d lowers) = %v, want %v", len(strings.Join(c.opts, ",")), strings.Count(c.lower, ":")+1, got, c.want)
		}
	}
	m := []snapshot.Mount{{Type: "overlay", Options: []string{"lowerdir=" + lowers(500), "upperdir=/u"}}}
	Use(t.TempDir())
	defer Use("")
	if got := Add(m); !slices.Equal(got[0].Options, m[0].Options) {
		t.Errorf("Add to an overlay of 500 lower layers changed its options to %v", got[0].Options)
	}
	m[0].Options[0] = "lowerdir=/a"
	if got := Add(m); got[0].Options[0] == "lowerdir=/a" {
		t.Errorf("Add to an overlay of one lower layer left it without the layer")
	}
}
