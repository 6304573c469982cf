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

// TestInheritDirsNotThroughSymlink: a layer with "a/bin/x" and then "a" as
// a symlink to a directory outside, over a lower layer whose a/bin is
// 0777 and owned by 1000: the outside's bin keeps its mode, owner and
// time, whether InheritDirs is given what Apply reported or a/bin itself.
func TestInheritDirsNotThroughSymlink(t *testing.T) {
	testutil.RequiresRoot(t)
	lower, outside := t.TempDir(), t.TempDir()
	if err := os.MkdirAll(filepath.Join(lower, "a/bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	os.Chmod(filepath.Join(lower, "a/bin"), 0o777)
	os.Lchown(filepath.Join(lower, "a/bin"), 1000, 1000)
	bin := filepath.Join(outside, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	mtime := time.Date(2020, 1, 2, 3, 4, 5, 0, time.UTC)
	os.Chtimes(bin, mtime, mtime)

	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	tw.WriteHeader(&tar.Header{Name: "a/bin/x", Typeflag: tar.TypeReg, Mode: 0o644})
	tw.WriteHeader(&tar.Header{Name: "a", Typeflag: tar.TypeSymlink, Linkname: outside})
	tw.Close()
	upper := t.TempDir()
	res, err := Apply(t.Context(), upper, &buf, ApplyOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := InheritDirs(upper, res.ImplicitDirs, []string{lower}); err != nil {
		t.Fatal(err)
	}
	check := func(when string) {
		t.Helper()
		fi, err := os.Lstat(bin)
		if err != nil {
			t.Fatal(err)
		}
		if uid, gid := ownerOf(t, bin); fi.Mode().Perm() != 0o755 || uid != 0 || gid != 0 || !fi.ModTime().Equal(mtime) {
			t.Errorf("%s: outside bin = %v %d:%d mtime %v; want drwxr-xr-x 0:0 %v", when, fi.Mode(), uid, gid, fi.ModTime(), mtime)
		}
	}
	check("after Apply's ImplicitDirs")
	if err := InheritDirs(upper, []string{"a/bin"}, []string{lower}); err == nil {
		t.Error("InheritDirs of a/bin through the symlink a succeeded")
	}
	check("after InheritDirs of a/bin")
}
