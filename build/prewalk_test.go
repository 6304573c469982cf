package build_test

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

// TestPrewalkedContextSeesEdits: a rebuild of a context copied whole (so
// walked beside the base's resolution) still sees an edit that keeps the
// file's size and mtime (its ctime changes), and copies the new content.
func TestPrewalkedContextSeesEdits(t *testing.T) {
	base := busyboxBase(t)
	ctxDir := writeContext(t, map[string]string{"a": "aaaa", "sub/b": "bbbb"})
	st := openState(t, t.TempDir())
	const df = "FROM {{BASE}}\nCOPY . /app/\n"
	if _, _, err := addBuild(t, st, base, ctxDir, df); err != nil {
		t.Fatal(err)
	}
	// Settled files: the rebuild stores the whole tree's record, which
	// makes the next build walk the context ahead.
	time.Sleep(200 * time.Millisecond)
	checkRebuildCached(t, st, base, ctxDir, df)
	a := filepath.Join(ctxDir, "a")
	fi, err := os.Stat(a)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(a, []byte("AAAA"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(a, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	files, ev, err := addBuild(t, st, base, ctxDir, df)
	if err != nil {
		t.Fatal(err)
	}
	if len(ev.ran()) == 0 || files["app/a"].content != "AAAA" {
		t.Errorf("after an edit keeping size and mtime: ran %v, /app/a %q; want the COPY run and AAAA", ev.ran(), files["app/a"].content)
	}
}
