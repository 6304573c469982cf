//go:build linux

package filecopy

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"github.com/builder-dev/builder/internal/testutil"
	"github.com/builder-dev/builder/llb"
	"github.com/builder-dev/builder/source/localctx"
)

// verifiedCopy checksums op's sources in ctxDir as the COPY's cache key
// does (a Verify tree), runs change, then copies from that tree into a
// new directory.
func verifiedCopy(t *testing.T, ctxDir string, ignore []string, op llb.CopyOp, change func()) error {
	t.Helper()
	tree, err := localctx.NewTree(ctxDir, ignore)
	mustDo(t, err)
	tree.Verify = true
	ex, err := NewExcludes(op.Excludes)
	mustDo(t, err)
	for _, src := range op.Sources {
		ms, err := tree.Match(src)
		mustDo(t, err)
		for _, m := range ms {
			_, err := tree.Checksum(m, ex)
			mustDo(t, err)
		}
	}
	// A later clock tick than the checksum's stats: a change in the same
	// tick keeps size and times (the sum cache's settling covers that).
	time.Sleep(20 * time.Millisecond)
	change()
	return Copy(t.Context(), t.TempDir(), tree, op, false, nil)
}

// TestCopyFailsOnContextChangedSinceChecksum: a COPY from the context
// copies only the files its checksum (its cache key) covered: a file
// edited (even to the same size and mtime), chmod'ed, added, removed or
// newly matched since then fails the copy with localctx.ErrChanged naming
// it; an unchanged context (with hard links, symlinks, .dockerignore
// exceptions and --exclude) copies, in turn and by workers, and so does one
// whose files only got a new ctime (hard-linked again, chmod'ed to the
// same mode).
func TestCopyFailsOnContextChangedSinceChecksum(t *testing.T) {
	testutil.RequiresRoot(t)
	setup := func(t *testing.T) string {
		dir := t.TempDir()
		mustDo(t, os.MkdirAll(filepath.Join(dir, "app/sub"), 0o755), os.MkdirAll(filepath.Join(dir, "app/skip/keep"), 0o755))
		for i := range 40 {
			mustDo(t, os.WriteFile(filepath.Join(dir, fmt.Sprintf("app/sub/f%d", i)), []byte(strings.Repeat("x", 20000+i)), 0o644))
		}
		mustDo(t, os.WriteFile(filepath.Join(dir, "app/a"), []byte("aaaa"), 0o644),
			os.WriteFile(filepath.Join(dir, "app/skip/drop"), []byte("d"), 0o644),
			os.WriteFile(filepath.Join(dir, "app/skip/keep/k"), []byte("k"), 0o644),
			os.WriteFile(filepath.Join(dir, "app/x.log"), []byte("log"), 0o644),
			os.Link(filepath.Join(dir, "app/a"), filepath.Join(dir, "app/a2")),
			os.Symlink("a", filepath.Join(dir, "app/link")),
			os.WriteFile(filepath.Join(dir, "one.txt"), []byte("one"), 0o644))
		return dir
	}
	ignore := []string{"app/skip", "!app/skip/keep"}
	dirOp := llb.CopyOp{Sources: []string{"app"}, Dest: "/app/", Excludes: []string{"*.log"}}
	for _, tc := range []struct {
		name   string
		op     llb.CopyOp
		change func(dir string) error
		want   string // the file the error names; "" for success
	}{
		{"unchanged", dirOp, func(string) error { return nil }, ""},
		{"excluded file edited", dirOp, func(dir string) error { return os.WriteFile(filepath.Join(dir, "app/x.log"), []byte("new"), 0o644) }, ""},
		{"edited", dirOp, func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "app/sub/f7"), []byte(strings.Repeat("y", 20007)), 0o644)
		}, "app/sub/f7"},
		{"edited, size and mtime kept", dirOp, func(dir string) error {
			p := filepath.Join(dir, "app/a")
			fi, err := os.Stat(p)
			if err != nil {
				return err
			}
			if err := os.WriteFile(p, []byte("bbbb"), 0o644); err != nil {
				return err
			}
			return os.Chtimes(p, fi.ModTime(), fi.ModTime())
		}, "app/a"},
		// The ctime changes, not the content: the file is read again.
		{"hard-linked again, content kept", dirOp, func(dir string) error {
			return os.Link(filepath.Join(dir, "app/sub/f3"), filepath.Join(dir, "app/skip/f3"))
		}, ""},
		{"chmod to the same mode", dirOp, func(dir string) error {
			fi, err := os.Stat(filepath.Join(dir, "app/a"))
			if err != nil {
				return err
			}
			return os.Chmod(filepath.Join(dir, "app/a"), fi.Mode().Perm())
		}, ""},
		{"chmod", dirOp, func(dir string) error { return os.Chmod(filepath.Join(dir, "app/sub"), 0o700) }, "app/sub"},
		{"relinked", dirOp, func(dir string) error {
			p := filepath.Join(dir, "app/link")
			return errors.Join(os.Remove(p), os.Symlink("a2", p))
		}, "app/link"},
		{"added", dirOp, func(dir string) error { return os.WriteFile(filepath.Join(dir, "app/sub/y"), nil, 0o644) }, "app/sub/y"},
		{"added below an exception", dirOp, func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "app/skip/keep/y"), nil, 0o644)
		}, "app/skip/keep/y"},
		{"removed", dirOp, func(dir string) error { return os.Remove(filepath.Join(dir, "app/sub/f39")) }, "app/sub/f39"},
		{"file source edited", llb.CopyOp{Sources: []string{"one.txt"}, Dest: "/"}, func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "one.txt"), []byte("two"), 0o644)
		}, "one.txt"},
		{"newly matched", llb.CopyOp{Sources: []string{"*.txt"}, Dest: "/"}, func(dir string) error {
			return os.WriteFile(filepath.Join(dir, "two.txt"), nil, 0o644)
		}, "*.txt"},
	} {
		for _, procs := range []int{1, 2} {
			t.Run(fmt.Sprintf("%s/GOMAXPROCS=%d", tc.name, procs), func(t *testing.T) {
				defer runtime.GOMAXPROCS(runtime.GOMAXPROCS(procs))
				dir := setup(t)
				err := verifiedCopy(t, dir, ignore, tc.op, func() { mustDo(t, tc.change(dir)) })
				switch {
				case tc.want == "" && err != nil:
					t.Fatalf("copy of an unchanged context failed: %v", err)
				case tc.want == "":
				case !errors.Is(err, localctx.ErrChanged) || !strings.HasPrefix(err.Error(), tc.want+":"):
					t.Fatalf("copy after the change: %v; want localctx.ErrChanged naming %s", err, tc.want)
				}
			})
		}
	}
}
