//go:build linux

package snapshot

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/builder-dev/builder/internal/testutil"
	"golang.org/x/sys/unix"
)

// fileCap returns a VFS_CAP_REVISION_2 security.capability value granting
// CAP_NET_RAW, the way `setcap cap_net_raw+ep` writes it.
func fileCap() string {
	b := make([]byte, 20)
	binary.LittleEndian.PutUint32(b[0:], 0x02000001) // revision 2, effective
	binary.LittleEndian.PutUint32(b[4:], 1<<13)      // permitted: CAP_NET_RAW
	return string(b)
}

// canonicalLayer is a layer in the order WriteDiff produces, with every
// kind of entry it handles.
func canonicalLayer() []tarEntry {
	t1 := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	t2 := time.Date(2024, 5, 6, 7, 8, 9, 123456789, time.UTC) // needs PAX
	long := "longdir/" + strings.Repeat("x", 150)
	return []tarEntry{
		{Name: ".wh.gone", Type: '0', Mode: 0, ModTime: t1},
		{Name: "bin/", Type: '5', Mode: 0o755, ModTime: t1},
		{Name: "bin/ping", Type: '0', Mode: 0o4755, ModTime: t2, Content: "ELF",
			Xattrs: map[string]string{"security.capability": fileCap()}},
		{Name: "bin/sh", Type: '2', Mode: 0o777, Linkname: "busybox", ModTime: t1},
		{Name: "data/", Type: '5', Mode: 0o2750, UID: 1000, GID: 1001, ModTime: t2},
		{Name: "data/.wh..wh..opq", Type: '0', Mode: 0, ModTime: t2},
		{Name: "data/file", Type: '0', Mode: 0o640, UID: 1000, GID: 1001, ModTime: t2, Content: "some data\n"},
		{Name: "data/link", Type: '1', Mode: 0o640, UID: 1000, GID: 1001, ModTime: t2, Linkname: "data/file"},
		{Name: "dev/", Type: '5', Mode: 0o755, ModTime: t1},
		{Name: "dev/fifo", Type: '6', Mode: 0o600, ModTime: t1},
		{Name: "dev/loop0", Type: '4', Mode: 0o660, GID: 6, Major: 7, Minor: 0, ModTime: t1},
		{Name: "dev/null", Type: '3', Mode: 0o666, Major: 1, Minor: 3, ModTime: t1},
		{Name: "longdir/", Type: '5', Mode: 0o755, ModTime: t1},
		{Name: long, Type: '0', Mode: 0o644, ModTime: t1, Content: "long name"},
		{Name: "tmp/", Type: '5', Mode: 0o1777, ModTime: t1},
	}
}

// TestRoundTrip applies a layer with every entry kind and writes it back:
// the result must be the same entries, byte for byte.
func TestRoundTrip(t *testing.T) {
	testutil.RequiresHostRoot(t)
	for _, userXattr := range []bool{false, true} {
		t.Run(fmt.Sprintf("userxattr=%v", userXattr), func(t *testing.T) {
			in := makeTar(t, canonicalLayer())
			dir := t.TempDir()
			res, err := Apply(t.Context(), dir, bytes.NewReader(in), ApplyOptions{UserXattr: userXattr})
			if err != nil {
				t.Fatalf("Apply() = %v", err)
			}
			if res.Size != int64(len("ELF")+len("some data\n")+len("long name")) {
				t.Errorf("Apply().Size = %d", res.Size)
			}
			if len(res.SkippedXattrs) != 0 {
				t.Errorf("Apply().SkippedXattrs = %v, want none", res.SkippedXattrs)
			}
			var out bytes.Buffer
			if err := WriteDiff(t.Context(), dir, &out, DiffOptions{}); err != nil {
				t.Fatalf("WriteDiff() = %v", err)
			}
			got, want := readTar(t, out.Bytes()), readTar(t, in)
			if !reflect.DeepEqual(got, want) {
				t.Errorf("WriteDiff(Apply(layer)) entries differ:\n got %v\nwant %v", entryNames(got), entryNames(want))
				for i := range min(len(got), len(want)) {
					if !reflect.DeepEqual(got[i], want[i]) {
						t.Errorf("entry %d:\n got %+v\nwant %+v", i, got[i], want[i])
					}
				}
			}
			if !bytes.Equal(out.Bytes(), in) {
				t.Errorf("WriteDiff(Apply(layer)) is not byte-identical to the layer (%d vs %d bytes)", out.Len(), len(in))
			}
			// Deterministic: a second run gives the same bytes.
			var again bytes.Buffer
			if err := WriteDiff(t.Context(), dir, &again, DiffOptions{}); err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(out.Bytes(), again.Bytes()) {
				t.Error("two WriteDiff runs over the same directory differ")
			}
		})
	}
}

// TestWriteDiffTree checks WriteDiff on a tree made with plain file
// operations, which works without root.
func TestWriteDiffTree(t *testing.T) {
	dir := t.TempDir()
	mtime := time.Date(2020, 1, 2, 3, 4, 5, 600, time.UTC)
	uid, gid := os.Getuid(), os.Getgid()
	mk := func(p string, mode os.FileMode, content string) {
		p = filepath.Join(dir, p)
		switch {
		case mode.IsDir():
			must(t, os.Mkdir(p, 0o755))
		case mode&os.ModeSymlink != 0:
			must(t, os.Symlink(content, p))
		default:
			must(t, os.WriteFile(p, []byte(content), 0o644))
		}
		if mode&os.ModeSymlink == 0 {
			must(t, os.Chmod(p, mode.Perm()))
		}
		must(t, unix.UtimesNanoAt(unix.AT_FDCWD, p, []unix.Timespec{unix.NsecToTimespec(mtime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}, unix.AT_SYMLINK_NOFOLLOW))
	}
	// Names chosen so that a full-path sort and a per-directory sort
	// disagree ("a-b" < "a/c" bytewise, but "a/" is walked first).
	mk("a", os.ModeDir|0o755, "")
	mk("a/c", 0o600, "c")
	mk("a-b", 0o644, "ab")
	mk("z", os.ModeSymlink, "a/c")
	must(t, os.Link(filepath.Join(dir, "a/c"), filepath.Join(dir, "hl")))
	must(t, unix.Mkfifo(filepath.Join(dir, "sock-is-skipped-fifo-is-not"), 0o600))
	must(t, unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(dir, "sock-is-skipped-fifo-is-not"), []unix.Timespec{unix.NsecToTimespec(mtime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}, 0))
	// Directory times last: creating entries changed them.
	must(t, unix.UtimesNanoAt(unix.AT_FDCWD, filepath.Join(dir, "a"), []unix.Timespec{unix.NsecToTimespec(mtime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}, 0))

	tests := []struct {
		name  string
		epoch *time.Time
		want  time.Time
	}{
		{"no epoch", nil, mtime},
		{"epoch after", ptr(mtime.Add(time.Hour)), mtime},
		{"epoch before clamps", ptr(time.Unix(1000, 0)), time.Unix(1000, 0).UTC()},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var buf bytes.Buffer
			if err := WriteDiff(t.Context(), dir, &buf, DiffOptions{SourceDateEpoch: tt.epoch}); err != nil {
				t.Fatalf("WriteDiff() = %v", err)
			}
			want := []tarEntry{
				{Name: "a/", Type: '5', Mode: 0o755},
				{Name: "a/c", Type: '0', Mode: 0o600, Content: "c"},
				{Name: "a-b", Type: '0', Mode: 0o644, Content: "ab"},
				{Name: "hl", Type: '1', Mode: 0o600, Linkname: "a/c"},
				{Name: "sock-is-skipped-fifo-is-not", Type: '6', Mode: 0o600},
				{Name: "z", Type: '2', Mode: 0o777, Linkname: "a/c"},
			}
			for i := range want {
				want[i].UID, want[i].GID, want[i].ModTime = uid, gid, tt.want
			}
			got := readTar(t, buf.Bytes())
			// Without root the temp dir may carry security xattrs; ignore.
			for i := range got {
				got[i].Xattrs = nil
			}
			if !reflect.DeepEqual(got, want) {
				t.Errorf("WriteDiff() =\n %+v\nwant\n %+v", got, want)
			}
		})
	}
}

func TestWriteDiffStripsOverlayXattrs(t *testing.T) {
	testutil.RequiresHostRoot(t)
	dir := t.TempDir()
	must(t, os.Mkdir(filepath.Join(dir, "d"), 0o755))
	must(t, os.WriteFile(filepath.Join(dir, "d/f"), nil, 0o644))
	// A file with contents, and a directory, have their xattrs read
	// through the descriptor the diff opens them with; others by path.
	must(t, os.WriteFile(filepath.Join(dir, "d/g"), []byte("data"), 0o644))
	must(t, os.Mkdir(filepath.Join(dir, "o"), 0o755))
	for _, x := range []struct{ path, name, value string }{
		{"d", "trusted.overlay.origin", "xx"},
		{"d", "trusted.overlay.impure", "y"},
		{"d", "user.overlay.opaque", "x"}, // "x" is not opaque, only "y" is
		{"d/f", "user.keep", "1"},
		{"d/g", "user.keep", "2"},
		{"o", "trusted.overlay.opaque", "y"},
		{"o", "user.o", "3"},
	} {
		must(t, unix.Lsetxattr(filepath.Join(dir, x.path), x.name, []byte(x.value), 0))
	}
	var buf bytes.Buffer
	must(t, WriteDiff(t.Context(), dir, &buf, DiffOptions{}))
	got := readTar(t, buf.Bytes())
	if names := entryNames(got); !reflect.DeepEqual(names, []string{"d/", "d/f", "d/g", "o/", "o/.wh..wh..opq"}) {
		t.Fatalf("WriteDiff() names = %v, want [d/ d/f d/g o/ o/.wh..wh..opq]", names)
	}
	if got[0].Xattrs != nil {
		t.Errorf("d/ xattrs = %v, want none", got[0].Xattrs)
	}
	// A layer records no user.* xattrs (only security.capability, as
	// BuildKit's: internal/archive TestWriteDiffXattrs).
	for _, e := range got {
		if e.Xattrs != nil {
			t.Errorf("%s xattrs = %v, want none", e.Name, e.Xattrs)
		}
	}
}

func TestWriteDiffCanceled(t *testing.T) {
	dir := t.TempDir()
	must(t, os.WriteFile(filepath.Join(dir, "f"), nil, 0o644))
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	if err := WriteDiff(ctx, dir, io.Discard, DiffOptions{}); err == nil {
		t.Error("WriteDiff(canceled) = nil, want error")
	}
}

// BenchmarkWriteDiff writes a layer of 4000 small files in 40 directories.
func BenchmarkWriteDiff(b *testing.B) {
	dir := b.TempDir()
	var total int64
	content := bytes.Repeat([]byte("0123456789abcdef"), 64) // 1 KiB
	for d := range 40 {
		sub := filepath.Join(dir, fmt.Sprintf("dir%02d", d))
		must(b, os.Mkdir(sub, 0o755))
		for f := range 100 {
			must(b, os.WriteFile(filepath.Join(sub, fmt.Sprintf("file%03d", f)), content, 0o644))
			total += int64(len(content))
		}
	}
	b.SetBytes(total)
	b.ReportAllocs()
	for b.Loop() {
		if err := WriteDiff(b.Context(), dir, io.Discard, DiffOptions{}); err != nil {
			b.Fatal(err)
		}
	}
}

func must(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func ptr[T any](v T) *T { return &v }
