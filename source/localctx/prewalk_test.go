package localctx

import (
	"context"
	"os"
	"path/filepath"
	"testing"
)

// TestPrewalk: a walk Prewalk started is what the first checksum of the
// whole tree by a tree given the same build's context lists (a file made
// after it started is not in it), once; the next checksum walks again. A
// context no earlier checksum covered whole is not walked ahead.
func TestPrewalk(t *testing.T) {
	dir := makeTree(t, map[string]string{"a": "aaaa", "sub/b": "bbbb"})
	settle()
	sums := newMemSums()
	ctx := WithPrewalks(context.Background())
	Prewalk(ctx, dir, nil, sums)
	if n := len(ctx.Value(prewalksKey{}).(*prewalks).m); n != 0 {
		t.Fatalf("a context never checksummed whole: %d walks started, want none", n)
	}
	first, _ := NewTree(dir, nil)
	first.Sums = sums
	before, err := first.Checksum(".", nil) // stores the tree's record
	if err != nil {
		t.Fatal(err)
	}

	Prewalk(ctx, dir, nil, sums)
	pws := ctx.Value(prewalksKey{}).(*prewalks)
	for _, pw := range pws.m {
		<-pw.done
	}
	if err := os.WriteFile(filepath.Join(dir, "new"), []byte("new"), 0o644); err != nil {
		t.Fatal(err)
	}
	after := plainChecksum(t, dir)
	if after == before {
		t.Fatal("a new file left the checksum unchanged")
	}
	tree, _ := NewTree(dir, nil)
	tree.Sums = sums
	tree.UsePrewalk(ctx)
	if s, err := tree.Checksum("sub", nil); err != nil || s == "" {
		t.Fatalf("checksum of sub: %q, %v", s, err)
	}
	if got, err := tree.Checksum(".", nil); err != nil || got != before {
		t.Errorf("first checksum of the tree: %s, %v; want the walk started before the new file (%s)", got, err, before)
	}
	if got, err := tree.Checksum(".", nil); err != nil || got != after {
		t.Errorf("second checksum of the tree: %s, %v; want a walk of its own, with the new file (%s)", got, err, after)
	}
	other, _ := NewTree(dir, []string{"a"})
	other.Sums = sums
	other.UsePrewalk(ctx)
	Prewalk(ctx, dir, nil, sums)
	if got, _ := other.Checksum(".", nil); got == after || got == before {
		t.Error("a tree with other excludes took the walk of the tree without")
	}
}
