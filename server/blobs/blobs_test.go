package blobs

import (
	"crypto/sha256"
	"encoding/hex"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/builder-dev/builder/server/api"
)

// TestAssembleStaysInside tries context listings that would write outside
// the context directory: .. paths, absolute paths, and a file below a
// symlink to elsewhere.
func TestAssembleStaysInside(t *testing.T) {
	root := t.TempDir()
	b := &Store{Dir: t.TempDir()}
	content := "owned"
	dgst := "sha256:" + sha256hex(content)
	if _, err := b.Put(dgst, int64(len(content)), strings.NewReader(content)); err != nil {
		t.Fatal(err)
	}
	outside := t.TempDir()
	file := uint32(0o644)
	dir := uint32(fs.ModeDir | 0o755)
	for name, files := range map[string][]api.File{
		"dotdot":   {{Path: ".", Mode: dir}, {Path: "../x", Mode: file, Digest: dgst, Size: 5}},
		"absolute": {{Path: ".", Mode: dir}, {Path: outside + "/x", Mode: file, Digest: dgst, Size: 5}},
		"unclean":  {{Path: ".", Mode: dir}, {Path: "a/../../x", Mode: file, Digest: dgst, Size: 5}},
		"symlink":  {{Path: ".", Mode: dir}, {Path: "l", Mode: uint32(fs.ModeSymlink | 0o777), Link: outside}, {Path: "l/x", Mode: file, Digest: dgst, Size: 5}},
	} {
		ctxDir := filepath.Join(root, name)
		b.Assemble(ctxDir, files)
		if _, err := os.Stat(filepath.Join(outside, "x")); err == nil {
			t.Fatalf("%s: the listing wrote outside the context", name)
		}
		if _, err := os.Stat(filepath.Join(root, "x")); err == nil {
			t.Fatalf("%s: the listing wrote outside the context", name)
		}
	}
	// A blob whose content does not match its digest is refused.
	if _, err := b.Put("sha256:"+sha256hex("other"), 5, strings.NewReader(content)); err == nil {
		t.Error("put with a wrong digest succeeded")
	}
}

func sha256hex(s string) string {
	h := sha256.Sum256([]byte(s))
	return hex.EncodeToString(h[:])
}

// TestUpdateKeepsUnchanged updates a kept context directory: unchanged
// files keep their inode, changed and removed ones are replaced, and a
// listing cannot write through a symlink an earlier listing made.
func TestUpdateKeepsUnchanged(t *testing.T) {
	b := &Store{Dir: t.TempDir()}
	blob := func(c string) string {
		d := "sha256:" + sha256hex(c)
		if _, err := b.Put(d, int64(len(c)), strings.NewReader(c)); err != nil {
			t.Fatal(err)
		}
		return d
	}
	dirMode, fileMode, linkMode := uint32(fs.ModeDir|0o755), uint32(0o644), uint32(fs.ModeSymlink|0o777)
	outside := t.TempDir()
	first := []api.File{
		{Path: ".", Mode: dirMode}, {Path: "keep", Mode: fileMode, Digest: blob("k"), Size: 1},
		{Path: "change", Mode: fileMode, Digest: blob("c1"), Size: 2}, {Path: "gone", Mode: fileMode, Digest: blob("g"), Size: 1},
		{Path: "l", Mode: linkMode, Link: outside},
	}
	dir := filepath.Join(t.TempDir(), "ctx")
	if err := b.Update(dir, nil, first); err != nil {
		t.Fatal(err)
	}
	ino := func(p string) uint64 {
		fi, err := os.Lstat(filepath.Join(dir, p))
		if err != nil {
			return 0
		}
		return fi.Sys().(*syscall.Stat_t).Ino
	}
	keepIno := ino("keep")
	old := map[string]api.File{}
	for _, f := range first {
		old[f.Path] = f
	}
	second := []api.File{
		{Path: ".", Mode: dirMode}, {Path: "keep", Mode: fileMode, Digest: blob("k"), Size: 1},
		{Path: "change", Mode: fileMode, Digest: blob("c2"), Size: 2},
		{Path: "l", Mode: dirMode}, {Path: "l/x", Mode: fileMode, Digest: blob("x"), Size: 1},
	}
	if err := b.Update(dir, old, second); err != nil {
		t.Fatal(err)
	}
	if ino("keep") != keepIno {
		t.Error("an unchanged file was rewritten")
	}
	for p, want := range map[string]string{"keep": "k", "change": "c2", "l/x": "x"} {
		if got, err := os.ReadFile(filepath.Join(dir, p)); err != nil || string(got) != want {
			t.Errorf("%s = %q, %v; want %q", p, got, err, want)
		}
	}
	if ino("gone") != 0 {
		t.Error("a file no longer listed is still there")
	}
	if _, err := os.Stat(filepath.Join(outside, "x")); err == nil {
		t.Error("l/x was written through the earlier listing's symlink l")
	}
	bad := []api.File{{Path: ".", Mode: dirMode}, {Path: "s", Mode: linkMode, Link: outside}, {Path: "s/y", Mode: fileMode, Digest: blob("x"), Size: 1}}
	if err := b.Update(filepath.Join(t.TempDir(), "c2"), nil, bad); err == nil {
		t.Error("a listing with a file below a listed symlink was accepted")
	}
}
