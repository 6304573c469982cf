//go:build linux

package snapshot

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"reflect"
	"syscall"
	"testing"
	"time"

	"github.com/builder-dev/builder/internal/testutil"
)

// TestImplicitDirsInherit applies a layer with tmp/x and a/b/c but no
// entry for tmp/, a/ or a/b/ into its own directory, over a lower layer
// whose /tmp is 1777 and owned by 5:6: Apply reports the three implied
// directories, and InheritDirs gives tmp/ the lower one's mode, owner and
// time while a/ and a/b/, new, stay 0755.
func TestImplicitDirsInherit(t *testing.T) {
	testutil.RequiresRoot(t)
	lower := t.TempDir()
	mtime := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	if err := os.Mkdir(filepath.Join(lower, "tmp"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(lower, "tmp"), 0o777|os.ModeSticky)
	os.Lchown(filepath.Join(lower, "tmp"), 5, 6)
	os.Chtimes(filepath.Join(lower, "tmp"), mtime, mtime)

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range []*tar.Header{
		{Name: "tmp/x", Typeflag: tar.TypeReg, Mode: 0o644},
		{Name: "a/b/c", Typeflag: tar.TypeReg, Mode: 0o644},
	} {
		tw.WriteHeader(h)
	}
	tw.Close()
	upper := t.TempDir()
	res, err := Apply(t.Context(), upper, &buf, ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if want := []string{"a", "a/b", "tmp"}; !reflect.DeepEqual(res.ImplicitDirs, want) {
		t.Errorf("ImplicitDirs = %q, want %q", res.ImplicitDirs, want)
	}
	if err := InheritDirs(upper, res.ImplicitDirs, []string{t.TempDir(), lower}); err != nil {
		t.Fatal(err)
	}
	fi, err := os.Lstat(filepath.Join(upper, "tmp"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode()&os.ModeSticky == 0 || fi.Mode().Perm() != 0o777 || !fi.ModTime().Equal(mtime) {
		t.Errorf("tmp = %v, mtime %v; want drwxrwxrwt from the lower layer, %v", fi.Mode(), fi.ModTime(), mtime)
	}
	if uid, gid := ownerOf(t, filepath.Join(upper, "tmp")); uid != 5 || gid != 6 {
		t.Errorf("tmp owned by %d:%d, want 5:6", uid, gid)
	}
	for _, d := range []string{"a", "a/b"} {
		if fi, err := os.Lstat(filepath.Join(upper, d)); err != nil || fi.Mode().Perm() != 0o755 {
			t.Errorf("%s = %v, %v; want a new 0755 directory", d, fi.Mode(), err)
		}
	}
}

func ownerOf(t *testing.T, p string) (int, int) {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	return int(st.Uid), int(st.Gid)
}
