//go:build linux

package archive

import (
	"archive/tar"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"
)

// entry is a tar entry for tests.
type entry struct {
	name, link, data string
	typ              byte
	mode             int64
	uid, gid         int
	major, minor     int64
	xattrs           map[string]string
}

var testTime = time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)

// tarBytes writes entries, in order, as a PAX tar.
func tarBytes(entries ...entry) []byte {
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Linkname: e.link, Typeflag: e.typ, Mode: e.mode, Uid: e.uid, Gid: e.gid,
			Devmajor: e.major, Devminor: e.minor, ModTime: testTime, Format: tar.FormatPAX}
		if e.typ == tar.TypeReg {
			h.Size = int64(len(e.data))
		}
		for k, v := range e.xattrs {
			if h.PAXRecords == nil {
				h.PAXRecords = map[string]string{}
			}
			h.PAXRecords[PAXXattr+k] = v
		}
		if err := tw.WriteHeader(h); err != nil {
			panic(err)
		}
		if _, err := tw.Write([]byte(e.data)); err != nil {
			panic(err)
		}
	}
	tw.Close()
	return buf.Bytes()
}

// tree lists "path mode" lines (and "=content" of files) under dir.
func tree(t *testing.T, dir string) []string { return describe(t, dir, "", false) }

// describe lists a line per file under dir, leaving out skip: its path
// relative to dir and its mode, with detail its link count and size, and
// a file's content after "=" or a symlink's target after "->".
func describe(t *testing.T, dir, skip string, detail bool) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if p == skip {
			return filepath.SkipDir
		}
		rel, _ := filepath.Rel(dir, p)
		line := rel + " " + fi.Mode().String()
		if detail {
			line += fmt.Sprintf(" nlink=%d size=%d", fi.Sys().(*syscall.Stat_t).Nlink, fi.Size())
		}
		switch {
		case fi.Mode().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			line += "=" + string(b)
		case fi.Mode()&os.ModeSymlink != 0:
			target, _ := os.Readlink(p)
			line += "->" + target
		}
		out = append(out, line)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

func extract(t *testing.T, dir string, opts Options, entries ...entry) (Result, error) {
	t.Helper()
	if os.Geteuid() != 0 {
		opts.NoLchown = true
	}
	return Extract(t.Context(), dir, tar.NewReader(bytes.NewReader(tarBytes(entries...))), opts)
}

// TestExtractOptions covers what the options change, each against the
// zero Options.
func TestExtractOptions(t *testing.T) {
	dirEntry := entry{name: "./", typ: tar.TypeDir, mode: 0o700}
	tests := []struct {
		name    string
		opts    Options
		entries []entry
		want    []string
	}{
		{"plain tar keeps .wh. names", Options{},
			[]entry{{name: "d/.wh.x", typ: tar.TypeReg, mode: 0o644, data: "w"}},
			[]string{". drwxr-xr-x", "d drwxr-xr-x", "d/.wh.x -rw-r--r--=w"}},
		{"exclude", Options{Exclude: func(rel string) bool { return strings.HasPrefix(rel, "skip") }},
			[]entry{{name: "keep", typ: tar.TypeReg, mode: 0o644, data: "k"}, {name: "skip/f", typ: tar.TypeReg, mode: 0o644, data: "s"}},
			[]string{". drwxr-xr-x", "keep -rw-r--r--=k"}},
		{"root entry sets the destination's mode", Options{}, []entry{dirEntry}, []string{". drwx------"}},
		{"KeepDestination leaves it", Options{KeepDestination: true}, []entry{dirEntry}, []string{". drwxr-xr-x"}},
		{"rooted dotdot stays inside", Options{},
			[]entry{{name: "/../x", typ: tar.TypeReg, mode: 0o644, data: "x"}},
			[]string{". drwxr-xr-x", "x -rw-r--r--=x"}},
		{"set-id and sticky bits", Options{},
			[]entry{{name: "s", typ: tar.TypeReg, mode: 0o4755}, {name: "t/", typ: tar.TypeDir, mode: 0o1777}},
			[]string{". drwxr-xr-x", "s urwxr-xr-x=", "t dtrwxrwxrwx"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.Chmod(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			if _, err := extract(t, dir, tt.opts, tt.entries...); err != nil {
				t.Fatalf("Extract() = %v", err)
			}
			if got := tree(t, dir); !slices.Equal(got, tt.want) {
				t.Errorf("Extract() tree = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestExtractOwner gives every entry, and every parent Extract makes, the
// fixed owner instead of the archive's.
func TestExtractOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: chown to other ids")
	}
	dir := t.TempDir()
	_, err := extract(t, dir, Options{Owner: &Owner{UID: 5, GID: 6}},
		entry{name: "implied/f", typ: tar.TypeReg, mode: 0o644, uid: 1000, gid: 1000},
		entry{name: "d/", typ: tar.TypeDir, mode: 0o755, uid: 1000},
		entry{name: "l", typ: tar.TypeSymlink, link: "d", uid: 7})
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{"implied", "implied/f", "d", "l"} {
		fi, err := os.Lstat(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		if st := fi.Sys().(*syscall.Stat_t); st.Uid != 5 || st.Gid != 6 {
			t.Errorf("%s owner = %d:%d, want 5:6", p, st.Uid, st.Gid)
		}
	}
}

// TestExtractWhiteouts: with Whiteouts, .wh.<name> becomes a 0/0 device
// replacing <name>, and the opaque marker sets the xattr of its directory.
func TestExtractWhiteouts(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root or root in a user namespace: mknod of whiteouts")
	}
	dir := t.TempDir()
	res, err := extract(t, dir, Options{Whiteouts: true, UserXattr: true},
		entry{name: "d/gone", typ: tar.TypeReg, mode: 0o644, data: "x"},
		entry{name: "d/.wh.gone", typ: tar.TypeReg},
		entry{name: "d/.wh..wh..opq", typ: tar.TypeReg},
		entry{name: ".wh..wh.plnk/", typ: tar.TypeDir})
	if err != nil {
		t.Fatal(err)
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(filepath.Join(dir, "d/gone"), &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFCHR || st.Rdev != 0 {
		t.Errorf("d/gone = %#o, %v; want a 0/0 character device", st.Mode, err)
	}
	if v, err := GetXattr(filepath.Join(dir, "d"), UserOpaque, new([]byte)); err != nil || v != "y" {
		t.Errorf("%s of d = %q, %v; want y", UserOpaque, v, err)
	}
	if _, err := os.Lstat(filepath.Join(dir, ".wh..wh.plnk")); err == nil {
		t.Error("AUFS metadata was written")
	}
	if !slices.Equal(res.ImplicitDirs, []string{"d"}) {
		t.Errorf("ImplicitDirs = %q, want [d]", res.ImplicitDirs)
	}
}

// TestExtractErrorsNameTheEntry: an error says which entry it is about.
func TestExtractErrorsNameTheEntry(t *testing.T) {
	_, err := extract(t, t.TempDir(), Options{}, entry{name: "a/../../up", typ: tar.TypeReg})
	if err == nil || !strings.Contains(err.Error(), `entry "a/../../up"`) || !strings.Contains(err.Error(), "outside the destination") {
		t.Errorf("Extract(a/../../up) = %v, want an error naming the entry and the escape", err)
	}
}

// TestImplicitDirsNotThroughSymlink: a layer with "a/bin/x" (implying a/
// and a/bin/) and then "a" as a symlink out of the destination reports no
// implicit directory: a/bin now names the outside's bin, which the caller
// would otherwise chmod and chown to the lower layers' a/bin.
func TestImplicitDirsNotThroughSymlink(t *testing.T) {
	outside := t.TempDir()
	if err := os.Mkdir(filepath.Join(outside, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, target := range []string{outside, "c"} {
		dir := t.TempDir()
		os.MkdirAll(filepath.Join(dir, "c/bin"), 0o755)
		res, err := extract(t, dir, Options{},
			entry{name: "a/bin/x", typ: tar.TypeReg, mode: 0o644, data: "x"},
			entry{name: "a", typ: tar.TypeSymlink, link: target})
		if err != nil {
			t.Fatal(err)
		}
		if len(res.ImplicitDirs) != 0 {
			t.Errorf("a -> %s: ImplicitDirs = %q, want none", target, res.ImplicitDirs)
		}
	}
}
