package filecopy

import (
	"archive/tar"
	"bytes"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/builder-dev/builder/internal/testutil"
	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

type member struct {
	name, link, data string
	typ              byte
	mode             int64
	uid, gid         int
}

var testTime = time.Date(2021, 3, 4, 5, 6, 7, 0, time.UTC)

func makeTar(t *testing.T, members []member) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, m := range members {
		hdr := &tar.Header{
			Name: m.name, Linkname: m.link, Typeflag: m.typ, Mode: m.mode,
			Uid: m.uid, Gid: m.gid, ModTime: testTime, Format: tar.FormatPAX,
		}
		if m.typ == tar.TypeReg {
			hdr.Size = int64(len(m.data))
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, m.data); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// compress compresses b as kind; bzip2 has no Go writer, so it runs the
// bzip2 command and skips without it.
func compress(t *testing.T, kind string, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.WriteCloser
	var err error
	switch kind {
	case "tar":
		return b
	case "gzip":
		w = gzip.NewWriter(&buf)
	case "xz":
		w, err = xz.NewWriter(&buf)
	case "zstd":
		w, err = zstd.NewWriter(&buf)
	case "bzip2":
		if _, err := exec.LookPath("bzip2"); err != nil {
			t.Skip("bzip2 command not installed (apt-get install bzip2)")
		}
		cmd := exec.Command("bzip2", "-c")
		cmd.Stdin = bytes.NewReader(b)
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		return out
	default:
		t.Fatalf("unknown compression %s", kind)
	}
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.Write(b); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func writeTemp(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// unpackInto unpacks archive bytes into /out of a fresh root (a directory
// below a parent, so that escapes would be visible) and returns the root.
func unpackInto(t *testing.T, c *copier, archive []byte) (string, error) {
	t.Helper()
	src := writeTemp(t, "archive", archive)
	kind, err := archiveKind(src)
	if err != nil {
		t.Fatal(err)
	}
	if kind == "" {
		t.Fatal("archiveKind = \"\", want an archive")
	}
	if c.root == "" {
		c.root = filepath.Join(t.TempDir(), "root")
		if err := os.Mkdir(c.root, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.mkdirAll("/out"); err != nil {
		t.Fatal(err)
	}
	return c.root, c.unpack(src, kind, "/out")
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

var treeMembers = []member{
	{name: "d/", typ: tar.TypeDir, mode: 0o750, uid: 1000, gid: 1001},
	{name: "d/f", typ: tar.TypeReg, mode: 0o640, uid: 1000, gid: 1001, data: "hello"},
	{name: "d/run", typ: tar.TypeReg, mode: 0o4755, data: "#!/bin/sh"},
	{name: "d/l", typ: tar.TypeSymlink, link: "f", uid: 7, gid: 8},
	{name: "d/h", typ: tar.TypeLink, link: "d/f"},
	{name: "./nodir/deep/file", typ: tar.TypeReg, mode: 0o600, data: "deep"},
	{name: "fifo", typ: tar.TypeFifo, mode: 0o644},
}

func TestUnpackCompressions(t *testing.T) {
	testutil.RequiresRoot(t)
	for _, kind := range []string{"tar", "gzip", "bzip2", "xz", "zstd"} {
		t.Run(kind, func(t *testing.T) {
			c := &copier{}
			root, err := unpackInto(t, c, compress(t, kind, makeTar(t, treeMembers)))
			if err != nil {
				t.Fatalf("unpack: %v", err)
			}
			out := filepath.Join(root, "out")
			checkFile(t, filepath.Join(out, "d/f"), "hello", 0o640)
			checkFile(t, filepath.Join(out, "d/run"), "#!/bin/sh", 0o755|fs.ModeSetuid)
			checkFile(t, filepath.Join(out, "nodir/deep/file"), "deep", 0o600)
			if uid, gid := ownerOf(t, filepath.Join(out, "d/f")); uid != 1000 || gid != 1001 {
				t.Errorf("d/f owner = %d:%d, want 1000:1001", uid, gid)
			}
			if uid, gid := ownerOf(t, filepath.Join(out, "d/l")); uid != 7 || gid != 8 {
				t.Errorf("d/l owner = %d:%d, want 7:8", uid, gid)
			}
			fi, err := os.Lstat(filepath.Join(out, "d"))
			if err != nil || fi.Mode() != fs.ModeDir|0o750 {
				t.Errorf("d: %v %v, want a 0750 directory", fi.Mode(), err)
			}
			if !fi.ModTime().Equal(testTime) {
				t.Errorf("d mtime = %v, want %v (set after its contents)", fi.ModTime(), testTime)
			}
			if fi, _ := os.Lstat(filepath.Join(out, "d/f")); !fi.ModTime().Equal(testTime) {
				t.Errorf("d/f mtime = %v, want %v", fi.ModTime(), testTime)
			}
			if target, err := os.Readlink(filepath.Join(out, "d/l")); err != nil || target != "f" {
				t.Errorf("d/l = %q, %v; want a symlink to f", target, err)
			}
			a, _ := os.Stat(filepath.Join(out, "d/f"))
			b, err := os.Stat(filepath.Join(out, "d/h"))
			if err != nil || !os.SameFile(a, b) {
				t.Errorf("d/h is not a hard link of d/f (%v)", err)
			}
			if fi, err := os.Lstat(filepath.Join(out, "fifo")); err != nil || fi.Mode().Type() != fs.ModeNamedPipe {
				t.Errorf("fifo: %v %v", fi, err)
			}
		})
	}
}

func checkFile(t *testing.T, p, want string, mode fs.FileMode) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Errorf("%s: %v", p, err)
		return
	}
	if string(b) != want {
		t.Errorf("%s = %q, want %q", p, b, want)
	}
	fi, _ := os.Lstat(p)
	if fi.Mode() != mode {
		t.Errorf("%s mode = %v, want %v", p, fi.Mode(), mode)
	}
}

func TestUnpackChownMergeAndReplace(t *testing.T) {
	testutil.RequiresRoot(t)
	root := filepath.Join(t.TempDir(), "root")
	for _, d := range []string{"out/d", "out/replaced-dir"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"out/d/kept", "out/d/f", "out/replaced-dir/x"} {
		if err := os.WriteFile(filepath.Join(root, f), []byte("old"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	c := &copier{root: root, uid: 5, gid: 6, chown: true}
	archive := makeTar(t, []member{
		{name: "d/", typ: tar.TypeDir, mode: 0o755, uid: 1000},
		{name: "d/f", typ: tar.TypeReg, mode: 0o644, uid: 1000, data: "new"},
		{name: "replaced-dir", typ: tar.TypeReg, mode: 0o644, data: "now a file"},
	})
	if _, err := unpackInto(t, c, archive); err != nil {
		t.Fatal(err)
	}
	checkFile(t, filepath.Join(root, "out/d/kept"), "old", 0o644)
	checkFile(t, filepath.Join(root, "out/d/f"), "new", 0o644)
	checkFile(t, filepath.Join(root, "out/replaced-dir"), "now a file", 0o644)
	for _, p := range []string{"out/d", "out/d/f", "out/replaced-dir"} {
		if uid, gid := ownerOf(t, filepath.Join(root, p)); uid != 5 || gid != 6 {
			t.Errorf("%s owner = %d:%d, want the --chown owner 5:6", p, uid, gid)
		}
	}
}

func TestUnpackTraversal(t *testing.T) {
	testutil.RequiresRoot(t)
	tests := []struct {
		name    string
		members []member
		wantErr string
		// inRoot are files that must exist in the root afterwards.
		inRoot []string
	}{
		{name: "dotdot", members: []member{{name: "../../escape", typ: tar.TypeReg, mode: 0o644, data: "x"}}, wantErr: "outside the destination"},
		{name: "dotdot inside", members: []member{{name: "a/../../escape", typ: tar.TypeReg, mode: 0o644, data: "x"}}, wantErr: "outside the destination"},
		{name: "absolute", members: []member{{name: "/etc/abs", typ: tar.TypeReg, mode: 0o644, data: "x"}}, inRoot: []string{"out/etc/abs"}},
		{name: "rooted dotdot", members: []member{{name: "/../x", typ: tar.TypeReg, mode: 0o644, data: "x"}}, inRoot: []string{"out/x"}},
		{name: "hardlink outside", members: []member{{name: "h", typ: tar.TypeLink, link: "../../../etc/passwd"}}, wantErr: "outside the destination"},
		{name: "symlink parent", members: []member{
			{name: "up", typ: tar.TypeSymlink, link: "../../../../.."},
			{name: "up/pwned", typ: tar.TypeReg, mode: 0o644, data: "x"},
		}, inRoot: []string{"out/pwned"}},
		{name: "absolute symlink parent", members: []member{
			{name: "abs", typ: tar.TypeSymlink, link: "/"},
			{name: "abs/tmp/pwned", typ: tar.TypeReg, mode: 0o644, data: "x"},
		}, inRoot: []string{"out/tmp/pwned"}},
		{name: "replace with symlink then write", members: []member{
			{name: "dir", typ: tar.TypeSymlink, link: "/.."},
			{name: "dir/f", typ: tar.TypeReg, mode: 0o644, data: "x"},
		}, inRoot: []string{"out/f"}},
		// The review's etclink.tar: symlinks out of the destination, to
		// the image's /etc and /bin, then files through them.
		{name: "symlinks to the image's files", members: []member{
			{name: "l", typ: tar.TypeSymlink, link: "/etc"},
			{name: "l/passwd", typ: tar.TypeReg, mode: 0o644, data: "pwned"},
			{name: "up", typ: tar.TypeSymlink, link: "../bin"},
			{name: "up/ls", typ: tar.TypeReg, mode: 0o755, data: "pwned"},
		}, inRoot: []string{"out/etc/passwd", "out/bin/ls", "out/l", "out/up"}},
		{name: "hardlink through symlink", members: []member{
			{name: "s", typ: tar.TypeSymlink, link: "/../../.."},
			{name: "h", typ: tar.TypeLink, link: "s/etc/passwd"},
		}, wantErr: "hard link"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent := t.TempDir()
			root := filepath.Join(parent, "root")
			if err := os.Mkdir(root, 0o755); err != nil {
				t.Fatal(err)
			}
			// Files of the image that no member may touch.
			for _, f := range []string{"etc/passwd", "bin/ls"} {
				if err := os.MkdirAll(filepath.Join(root, filepath.Dir(f)), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join(root, f), []byte("image"), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			_, err := unpackInto(t, &copier{root: root}, makeTar(t, tt.members))
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("unpack error = %v, want one containing %q", err, tt.wantErr)
				}
			} else if err != nil {
				t.Errorf("unpack: %v", err)
			}
			for _, p := range tt.inRoot {
				if _, err := os.Lstat(filepath.Join(root, p)); err != nil {
					t.Errorf("%s not written inside the root: %v", p, err)
				}
			}
			for _, f := range []string{"etc/passwd", "bin/ls"} {
				if b, err := os.ReadFile(filepath.Join(root, f)); err != nil || string(b) != "image" {
					t.Errorf("the image's /%s = %q, %v; want it untouched", f, b, err)
				}
			}
			// Nothing beside the root in its parent directory.
			entries, _ := os.ReadDir(parent)
			if len(entries) != 1 {
				t.Errorf("the parent of the root holds %v, want only root", entries)
			}
		})
	}
}

func TestArchiveKind(t *testing.T) {
	tarball := makeTar(t, []member{{name: "f", typ: tar.TypeReg, mode: 0o644, data: "x"}})
	tests := []struct {
		name string
		data []byte
		want string
	}{
		{"tar", tarball, "tar"},
		{"tar.gz", compress(t, "gzip", tarball), "gzip"},
		{"tar.xz", compress(t, "xz", tarball), "xz"},
		{"tar.zst", compress(t, "zstd", tarball), "zstd"},
		{"gzipped text", compress(t, "gzip", []byte("just some text\n")), ""},
		{"xz text", compress(t, "xz", []byte(strings.Repeat("text ", 200))), ""},
		{"text", []byte("hello\n"), ""},
		{"empty", nil, ""},
		{"zero blocks", make([]byte, 1024), ""},
		{"truncated gzip", compress(t, "gzip", tarball)[:5], ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := archiveKind(writeTemp(t, "f", tt.data))
			if err != nil || got != tt.want {
				t.Errorf("archiveKind = %q, %v; want %q", got, err, tt.want)
			}
		})
	}
}

// TestUnpackSparse unpacks a PAX sparse member of 256 MiB holding 4 KiB of
// data: its holes stay holes. A 20 GiB one in a 3 KiB archive is refused
// before anything is written.
func TestUnpackSparse(t *testing.T) {
	testutil.RequiresRoot(t)
	data := bytes.Repeat([]byte("d"), 4096)
	root, err := unpackInto(t, &copier{}, testutil.SparseTar("big", 256<<20, []testutil.Fragment{{Offset: 64 << 20, Data: data}}))
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(filepath.Join(root, "out/big"))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Size() != 256<<20 || fi.Sys().(*syscall.Stat_t).Blocks*512 > 1<<20 {
		t.Errorf("out/big: size %d, %d blocks; want 256 MiB in a few blocks", fi.Size(), fi.Sys().(*syscall.Stat_t).Blocks)
	}

	_, err = unpackInto(t, &copier{}, testutil.SparseTar("bomb", 20<<30, []testutil.Fragment{{Offset: 0, Data: data}}))
	if err == nil || !strings.Contains(err.Error(), "bomb") {
		t.Errorf("unpacking a 20 GiB sparse member = %v, want a bomb error", err)
	}
}
