//go:build linux

package archive

import (
	"archive/tar"
	"bytes"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"syscall"
	"testing"

	"github.com/builder-dev/builder/internal/testutil"
	"golang.org/x/sys/unix"
)

// TestExtractParentsResolvedAgain: parents held open (parentAt) must
// resolve as a fresh resolution would once an entry changed what a name
// points to: a directory replaced by a symlink, a symlink made where an
// earlier resolution took a missing name lexically, a parent replaced by a
// file, and a hard link to a symlink.
func TestExtractParentsResolvedAgain(t *testing.T) {
	tests := []struct {
		name    string
		entries []entry
		want    []string
		wantErr bool
	}{
		{name: "directory replaced by a symlink", entries: []entry{
			{name: "a/", typ: tar.TypeDir, mode: 0o755},
			{name: "a/f", typ: tar.TypeReg, mode: 0o644, data: "1"},
			{name: "b/", typ: tar.TypeDir, mode: 0o755},
			{name: "a", typ: tar.TypeSymlink, link: "b"},
			{name: "a/g", typ: tar.TypeReg, mode: 0o644, data: "2"},
		}, want: []string{". drwxr-xr-x", "a Lrwxrwxrwx->b", "b drwxr-xr-x", "b/g -rw-r--r--=2"}},
		{name: "symlink over a name taken lexically", entries: []entry{
			// l resolves to w while z is missing (z/.. taken lexically),
			// to q/w once z is a symlink to q/r.
			{name: "l", typ: tar.TypeSymlink, link: "z/../w"},
			{name: "l/f", typ: tar.TypeReg, mode: 0o644, data: "1"},
			{name: "z", typ: tar.TypeSymlink, link: "q/r"},
			{name: "l/g", typ: tar.TypeReg, mode: 0o644, data: "2"},
		}, want: []string{". drwxr-xr-x", "l Lrwxrwxrwx->z/../w", "q drwxr-xr-x", "q/w drwxr-xr-x",
			"q/w/g -rw-r--r--=2", "w drwxr-xr-x", "w/f -rw-r--r--=1", "z Lrwxrwxrwx->q/r"}},
		{name: "hard link to a symlink over a name taken lexically", entries: []entry{
			{name: "s", typ: tar.TypeSymlink, link: "q/r"},
			{name: "l", typ: tar.TypeSymlink, link: "z/../w"},
			{name: "l/f", typ: tar.TypeReg, mode: 0o644, data: "1"},
			{name: "z", typ: tar.TypeLink, link: "s"},
			{name: "l/g", typ: tar.TypeReg, mode: 0o644, data: "2"},
		}, want: []string{". drwxr-xr-x", "l Lrwxrwxrwx->z/../w", "q drwxr-xr-x", "q/w drwxr-xr-x",
			"q/w/g -rw-r--r--=2", "s Lrwxrwxrwx->q/r", "w drwxr-xr-x", "w/f -rw-r--r--=1", "z Lrwxrwxrwx->q/r"}},
		{name: "parent replaced by a file", wantErr: true, entries: []entry{
			{name: "d/f1", typ: tar.TypeReg, mode: 0o644, data: "1"},
			{name: "d", typ: tar.TypeReg, mode: 0o644, data: "file"},
			{name: "d/f2", typ: tar.TypeReg, mode: 0o644, data: "2"},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if err := os.Chmod(dir, 0o755); err != nil {
				t.Fatal(err)
			}
			_, err := extract(t, dir, Options{}, tt.entries...)
			if tt.wantErr {
				if err == nil {
					t.Errorf("Extract() = nil, want an error (a file as a parent)")
				}
				return
			}
			if err != nil {
				t.Fatalf("Extract() = %v", err)
			}
			if got := tree(t, dir); !slices.Equal(got, tt.want) {
				t.Errorf("Extract() tree = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestExtractModes: a file's mode is the tar's whatever the umask takes
// off at creation (bits of 0o022, none, all) and with set-id bits.
func TestExtractModes(t *testing.T) {
	modes := []int64{0o644, 0o755, 0o666, 0o777, 0o000, 0o400, 0o4755, 0o2711, 0o1644}
	var entries []entry
	for i, m := range modes {
		entries = append(entries, entry{name: string(rune('a' + i)), typ: tar.TypeReg, mode: m, data: "x"})
	}
	dir := t.TempDir()
	if _, err := extract(t, dir, Options{}, entries...); err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(dir, e.name), &st); err != nil {
			t.Fatal(err)
		}
		if got := int64(st.Mode & 0o7777); got != e.mode {
			t.Errorf("mode of a file of mode %#o = %#o", e.mode, got)
		}
	}
}

// TestExtractUnderDefaultACL: a default ACL on the destination replaces
// the umask for what is made in it; the tar's modes still win.
func TestExtractUnderDefaultACL(t *testing.T) {
	dir := t.TempDir()
	// user::rwx group::--- other::--- (xattr version 2, then tag, perm, id).
	acl := binary.LittleEndian.AppendUint32(nil, 2)
	for _, e := range [][2]uint16{{0x01, 7}, {0x04, 0}, {0x20, 0}} {
		acl = binary.LittleEndian.AppendUint16(acl, e[0])
		acl = binary.LittleEndian.AppendUint16(acl, e[1])
		acl = binary.LittleEndian.AppendUint32(acl, 0xffffffff)
	}
	if err := unix.Setxattr(dir, "system.posix_acl_default", acl, 0); err != nil {
		if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EPERM) {
			t.Skipf("no default ACLs here: %v", err)
		}
		t.Fatal(err)
	}
	if _, err := extract(t, dir, Options{KeepDestination: true},
		entry{name: "f", typ: tar.TypeReg, mode: 0o644, data: "x"},
		entry{name: "d/g", typ: tar.TypeReg, mode: 0o755, data: "y"}); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]uint32{"f": 0o644, "d/g": 0o755} {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(dir, p), &st); err != nil {
			t.Fatal(err)
		}
		if st.Mode&0o7777 != want {
			t.Errorf("mode of %s = %#o, want %#o (the default ACL's mode kept)", p, st.Mode&0o7777, want)
		}
	}
}

// TestExtractOwnerInSetgidDirectory: in a setgid directory of another
// group, new entries take that group; the tar's group must still win,
// for files, symlinks and directories alike.
func TestExtractOwnerInSetgidDirectory(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: chown to other ids")
	}
	dir := t.TempDir()
	if err := os.Chown(dir, 0, 4321); err != nil {
		t.Fatal(err)
	}
	if err := unix.Chmod(dir, 0o2755); err != nil { // os.Chmod would drop the raw setgid bit
		t.Fatal(err)
	}
	gid := os.Getegid()
	if _, err := extract(t, dir, Options{KeepDestination: true},
		entry{name: "f", typ: tar.TypeReg, mode: 0o644, gid: gid},
		entry{name: "l", typ: tar.TypeSymlink, link: "f", gid: gid},
		entry{name: "d/", typ: tar.TypeDir, mode: 0o755, gid: gid},
		entry{name: "d/g", typ: tar.TypeReg, mode: 0o644, gid: gid},
		entry{name: "o", typ: tar.TypeReg, mode: 0o644, gid: 4321}); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]int{"f": gid, "l": gid, "d": gid, "d/g": gid, "o": 4321} {
		fi, err := os.Lstat(filepath.Join(dir, p))
		if err != nil {
			t.Fatal(err)
		}
		if st := fi.Sys().(*syscall.Stat_t); int(st.Gid) != want || st.Uid != 0 {
			t.Errorf("%s owner = %d:%d, want 0:%d", p, st.Uid, st.Gid, want)
		}
	}
}

// TestExtractSearchOnlyDestination: a destination its owner may search and
// write but not read (0311) takes a layer as that owner, as it did when
// entries were made by path.
func TestExtractSearchOnlyDestination(t *testing.T) {
	dir := testutil.SearchOnlyDir(t, 65534)
	var err error
	testutil.AsFSUser(t, 65534, func() {
		_, err = Extract(t.Context(), dir, tar.NewReader(bytes.NewReader(tarBytes(
			entry{name: "f", typ: tar.TypeReg, mode: 0o644, data: "x"},
			entry{name: "sub/", typ: tar.TypeDir, mode: 0o755},
			entry{name: "sub/g", typ: tar.TypeReg, mode: 0o600, data: "y"},
			entry{name: "new/h", typ: tar.TypeReg, mode: 0o644, data: "z"}))), Options{NoLchown: true})
	})
	if err != nil {
		t.Fatalf("extracting into a 0311 destination as its owner: %v", err)
	}
	for name, want := range map[string]string{"f": "x", "sub/g": "y", "new/h": "z"} {
		if b, err := os.ReadFile(filepath.Join(dir, name)); err != nil || string(b) != want {
			t.Errorf("%s = %q, %v; want %q", name, b, err, want)
		}
	}
}
