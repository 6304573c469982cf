package gc

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/builder-dev/builder/cache"
	"github.com/builder-dev/builder/cache/sumprune"
	"github.com/builder-dev/builder/source/localctx"
)

// TestPruneDropsGoneTreeRecords: a prune removes the file tree records
// of build contexts that no longer exist and keeps the others.
func TestPruneDropsGoneTreeRecords(t *testing.T) {
	root := t.TempDir()
	c := openCollector(t, root)
	sums := c.DB.FileSums()
	id := func(dir string) []byte { return []byte(dir + "\x00.\x00" + "0123456789abcdef0123456789abcdef") }
	here, gone := id(root), id(filepath.Join(root, "checkout-gone"))
	for _, i := range [][]byte{here, gone} {
		sums.Store(nil, nil, nil, &cache.TreeSums{ID: i, Sums: [][32]byte{{1}}})
	}
	if _, err := c.Prune(t.Context(), PruneOptions{}); err != nil {
		t.Fatal(err)
	}
	if _, ok := sums.LookupTree(here); !ok {
		t.Error("a prune removed the tree record of a context that exists")
	}
	if _, ok := sums.LookupTree(gone); ok {
		t.Error("a prune kept the tree record of a context that is gone")
	}
}

// countingSums counts how a tree's checksum used the file digest memory.
type countingSums struct {
	cache.FileSums
	lookups, found, treeHits, stores int
}

func (c *countingSums) Lookup(paths [][]byte, keys []cache.FileKey) ([][32]byte, []bool) {
	c.lookups++
	sums, ok := c.FileSums.Lookup(paths, keys)
	for _, o := range ok {
		if o {
			c.found++
		}
	}
	return sums, ok
}

func (c *countingSums) LookupTree(id []byte) (cache.TreeSums, bool) {
	rec, ok := c.FileSums.LookupTree(id)
	if ok {
		c.treeHits++
	}
	return rec, ok
}

func (c *countingSums) Store(paths []string, keys []cache.FileKey, sums [][32]byte, tree *cache.TreeSums) {
	c.stores++
	c.FileSums.Store(paths, keys, sums, tree)
}

// makeContexts makes n build contexts of files files each under dir, old
// enough for their digests to be remembered.
func makeContexts(t *testing.T, dir string, n, files int) []string {
	t.Helper()
	var ctxs []string
	for i := range n {
		ctx := filepath.Join(dir, fmt.Sprintf("checkout-%d", i))
		for j := range files {
			p := filepath.Join(ctx, "src", fmt.Sprintf("f%d", j))
			if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(p, []byte(p), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		ctxs = append(ctxs, ctx)
	}
	// Files are remembered once settled (source/localctx: 100 ms).
	time.Sleep(250 * time.Millisecond)
	return ctxs
}

// checksum checksums ctx as a COPY . does, through sums.
func checksum(t *testing.T, ctx string, sums localctx.SumCache) string {
	t.Helper()
	tree, err := localctx.NewTree(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	tree.Sums = sums
	s, err := tree.Checksum(".", nil)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestPruneFileSumsOfGoneContexts: 50 build contexts (a CI machine's
// checkouts) leave a file record per file and a tree record each; once
// 45 are removed, a prune leaves the records of the 5 others, and the
// next build of one of those reads its digests from its tree record, as
// before the prune: it hashes nothing and writes nothing.
func TestPruneFileSumsOfGoneContexts(t *testing.T) {
	root := t.TempDir()
	c := openCollector(t, root)
	ctxs := makeContexts(t, filepath.Join(root, "ci"), 50, 10)
	before := map[string]string{}
	for _, ctx := range ctxs {
		before[ctx] = checksum(t, ctx, c.DB.FileSums())
	}
	if files, trees, err := c.DB.FileSums().Count(); err != nil || files != 500 || trees != 50 {
		t.Fatalf("after 50 builds: %d file and %d tree records (%v), want 500 and 50", files, trees, err)
	}
	for _, ctx := range ctxs[5:] {
		if err := os.RemoveAll(ctx); err != nil {
			t.Fatal(err)
		}
	}
	rep, err := c.Prune(t.Context(), PruneOptions{})
	if err != nil {
		t.Fatal(err)
	}
	files, trees, err := c.DB.FileSums().Count()
	if err != nil || files != 50 || trees != 5 || rep.FileSums != 450+45 {
		t.Errorf("after the prune: %d file and %d tree records (%v), report %d removed; want 50, 5 and 495", files, trees, err, rep.FileSums)
	}
	for _, ctx := range ctxs[:5] {
		sums := &countingSums{FileSums: c.DB.FileSums()}
		if got := checksum(t, ctx, sums); got != before[ctx] {
			t.Errorf("%s: checksum %s after the prune, %s before", ctx, got, before[ctx])
		}
		if sums.treeHits != 1 || sums.lookups != 0 || sums.stores != 0 {
			t.Errorf("%s after the prune: %d tree hits, %d per-file lookups, %d stores; want 1, 0, 0 (a no-op)", ctx, sums.treeHits, sums.lookups, sums.stores)
		}
	}
	// An edit in a kept context: the other files' digests are still
	// remembered, only the edited file is hashed (and, being just
	// written, not remembered yet).
	edited := filepath.Join(ctxs[0], "src", "f3")
	if err := os.WriteFile(edited, []byte("edited"), 0o644); err != nil {
		t.Fatal(err)
	}
	sums := &countingSums{FileSums: c.DB.FileSums()}
	checksum(t, ctxs[0], sums)
	if sums.lookups != 1 || sums.found != 9 {
		t.Errorf("after one edit: %d per-file lookups finding %d digests, want 1 finding 9 of 10", sums.lookups, sums.found)
	}
}

// TestAutoGCBoundsFileSums: the automatic GC at the end of a build prunes
// the file digest records once a quarter of the policy's bound was added,
// keeping the contexts used last within the bound (the contexts, all
// used just now, count as used over an hour ago).
func TestAutoGCBoundsFileSums(t *testing.T) {
	defer func(r time.Duration) { sumprune.Recent = r }(sumprune.Recent)
	sumprune.Recent = 0
	root := t.TempDir()
	c := openCollector(t, root)
	ctxs := makeContexts(t, filepath.Join(root, "ci"), 5, 10)
	for _, ctx := range ctxs {
		checksum(t, ctx, c.DB.FileSums())
	}
	// 5 contexts of 10 files: 50 file records and 50 digests in trees,
	// under a quarter of a bound of 1,000: nothing to do yet.
	ctx, use := startUse(t, c)
	c.FinishUse(ctx, use, &Policy{KeepStorage: 1 << 40, FileDigests: 1000}, func(w string) { t.Error(w) })
	if files, trees, err := c.DB.FileSums().Count(); err != nil || files != 50 || trees != 5 {
		t.Errorf("after a build's GC under a quarter of its bound: %d file and %d tree records (%v), want 50 and 5", files, trees, err)
	}
	ctx, use = startUse(t, c)
	c.FinishUse(ctx, use, &Policy{KeepStorage: 1 << 40, FileDigests: 40}, func(w string) { t.Error(w) })
	files, trees, err := c.DB.FileSums().Count()
	if err != nil || files != 20 || trees != 2 {
		t.Errorf("after a build's GC with a bound of 40 digests: %d file and %d tree records (%v), want 20 and 2", files, trees, err)
	}
	for i, ctx := range ctxs {
		sums := &countingSums{FileSums: c.DB.FileSums()}
		checksum(t, ctx, sums)
		if kept := i >= 3; (sums.treeHits == 1) != kept {
			t.Errorf("context %d (of 5, built in order): from its tree record %v, want %v", i, sums.treeHits == 1, kept)
		}
	}
}
