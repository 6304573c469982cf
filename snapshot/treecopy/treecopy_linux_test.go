//go:build linux

package treecopy

import (
	"os"
	"path/filepath"
	"slices"
	"sort"
	"testing"

	"github.com/builder-dev/builder/internal/archive"
	"golang.org/x/sys/unix"
)

// files lists "path=content" (or "path/" for directories) under dir.
func files(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		if fi.IsDir() {
			out = append(out, rel+"/")
			return nil
		}
		b, _ := os.ReadFile(p)
		out = append(out, rel+"="+string(b))
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func put(t *testing.T, p, content string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestMerge merges two layers: the top one's file wins, its whiteout hides
// the lower file, and its opaque directory hides the lower directory's
// contents; a hard link within a layer stays one.
func TestMerge(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root or root in a user namespace: mknod of whiteouts")
	}
	top, low := t.TempDir(), t.TempDir()
	put(t, filepath.Join(low, "f"), "low")
	put(t, filepath.Join(low, "gone"), "low")
	put(t, filepath.Join(low, "opq/old"), "low")
	put(t, filepath.Join(low, "merged/a"), "low")
	put(t, filepath.Join(top, "f"), "top")
	put(t, filepath.Join(top, "opq/new"), "top")
	put(t, filepath.Join(top, "merged/b"), "top")
	if err := unix.Mknod(filepath.Join(top, "gone"), unix.S_IFCHR, 0); err != nil {
		t.Fatal(err)
	}
	if err := unix.Lsetxattr(filepath.Join(top, "opq"), archive.UserOpaque, []byte("y"), 0); err != nil {
		t.Fatal(err)
	}
	if err := os.Link(filepath.Join(top, "f"), filepath.Join(top, "g")); err != nil {
		t.Fatal(err)
	}
	dst := filepath.Join(t.TempDir(), "merged")
	if err := Merge(dst, []string{top, low}, true); err != nil {
		t.Fatalf("Merge = %v", err)
	}
	want := []string{"f=top", "g=top", "merged/", "merged/a=low", "merged/b=top", "opq/", "opq/new=top"}
	if got := files(t, dst); !slices.Equal(got, want) {
		t.Errorf("Merge = %q, want %q", got, want)
	}
	f, _ := os.Stat(filepath.Join(dst, "f"))
	g, _ := os.Stat(filepath.Join(dst, "g"))
	if !os.SameFile(f, g) {
		t.Error("f and g are no longer one file")
	}
	if v, err := archive.GetXattr(filepath.Join(dst, "opq"), archive.UserOpaque, new([]byte)); err == nil {
		t.Errorf("the merged tree carries the opaque xattr (%q); it is a plain tree", v)
	}
}
