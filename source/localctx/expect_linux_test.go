//go:build linux

package localctx

import (
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestExpectCheck: a copy's check of a regular file it read (Expect.Check,
// as filecopy calls it with a stat after the read) passes a file whose
// ctime or inode number changed with its content kept: hard-linked
// elsewhere (pnpm's and ccache's stores), chmod'ed to the same mode,
// replaced by a new inode with the same bytes (as a FUSE mount without
// stable inode numbers shows a file). It fails a file edited to the same
// size with its mtime restored, and a file touched. For a file below a
// directory source and for a file source. Needs no root.
func TestExpectCheck(t *testing.T) {
	must := func(t *testing.T, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	// rewrite writes content to p, in place or as a new inode renamed over
	// it, and restores p's mtime.
	rewrite := func(t *testing.T, p, content string, newInode bool) {
		fi, err := os.Stat(p)
		must(t, err)
		w := p
		if newInode {
			w = p + ".new"
		}
		must(t, os.WriteFile(w, []byte(content), 0o644))
		if newInode {
			must(t, os.Rename(w, p))
		}
		must(t, os.Chtimes(p, fi.ModTime(), fi.ModTime()))
	}
	for _, tc := range []struct {
		name   string
		change func(t *testing.T, p, outside string)
		same   bool // the check passes
	}{
		{"unchanged", func(*testing.T, string, string) {}, true},
		{"hard-linked elsewhere", func(t *testing.T, p, outside string) { must(t, os.Link(p, outside)) }, true},
		{"chmod to the same mode", func(t *testing.T, p, _ string) { must(t, os.Chmod(p, 0o644)) }, true},
		{"same bytes, new inode", func(t *testing.T, p, _ string) { rewrite(t, p, "v1v1", true) }, true},
		{"edited, size and mtime kept", func(t *testing.T, p, _ string) { rewrite(t, p, "v2v2", false) }, false},
		{"edited as a new inode, size and mtime kept", func(t *testing.T, p, _ string) { rewrite(t, p, "v2v2", true) }, false},
		{"touched", func(t *testing.T, p, _ string) {
			now := time.Now()
			must(t, os.Chtimes(p, now, now))
		}, false},
	} {
		for _, src := range []struct{ rel, file, sub string }{{"app", "app/f", "f"}, {"one", "one", ""}} {
			t.Run(tc.name+"/"+src.rel, func(t *testing.T) {
				dir := makeTree(t, map[string]string{"app/f": "v1v1", "app/g": "g", "one": "v1v1"})
				p := filepath.Join(dir, src.file)
				must(t, os.Chmod(p, 0o644))
				tree, err := NewTree(dir, nil)
				must(t, err)
				tree.Verify = true
				_, err = tree.Checksum(src.rel, nil)
				must(t, err)
				fi, err := os.Lstat(p)
				must(t, err)
				before := fileKey(fi)
				// A later clock tick than the checksum's stat, for the ctime.
				time.Sleep(20 * time.Millisecond)
				tc.change(t, p, filepath.Join(t.TempDir(), "outside"))
				fi, err = os.Lstat(p)
				must(t, err)
				key := fileKey(fi)
				if tc.name != "unchanged" && key == before {
					t.Fatalf("the change left %s's key as it was (%+v): nothing to check", src.file, key)
				}
				x, err := tree.Expect(src.rel)
				must(t, err)
				err = x.Check(src.sub, fi.Mode(), key, "")
				switch {
				case tc.same && err != nil:
					t.Fatalf("check of %s, content kept: %v", src.file, err)
				case !tc.same && !errors.Is(err, ErrChanged):
					t.Fatalf("check of %s, content or mtime changed: %v, want ErrChanged", src.file, err)
				}
			})
		}
	}
}
