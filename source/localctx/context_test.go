package localctx

import (
	"encoding/hex"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func makeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestMatch(t *testing.T) {
	dir := makeTree(t, map[string]string{
		"a.txt": "a", "b.txt": "b", "c.md": "c", "sub/d.txt": "d", "sub/deep/e.txt": "e", "ignored.txt": "x",
	})
	tree, err := NewTree(dir, []string{"ignored.txt", "sub/deep"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		src  string
		want string
		err  bool
	}{
		{"a.txt", "a.txt", false},
		{"./sub/../a.txt", "a.txt", false},
		{"/a.txt", "a.txt", false},
		{"../../a.txt", "a.txt", false},
		{"*.txt", "a.txt,b.txt", false},
		{"sub/*.txt", "sub/d.txt", false},
		{"sub", "sub", false},
		{".", ".", false},
		{"missing.txt", "", true},
		{"*.go", "", false}, // an empty wildcard selects nothing, as in BuildKit
		{"ignored.txt", "", true},
		{"sub/deep/e.txt", "", true},
	}
	for _, tt := range tests {
		got, err := tree.Match(tt.src)
		if (err != nil) != tt.err || strings.Join(got, ",") != tt.want {
			t.Errorf("Match(%q) = %v, %v; want %q, error %v", tt.src, got, err, tt.want, tt.err)
		}
		if err != nil && !errors.Is(err, ErrNoMatch) {
			t.Errorf("Match(%q) error %v does not wrap ErrNoMatch", tt.src, err)
		}
	}
}

func TestChecksumSeesContentNotTimes(t *testing.T) {
	dir := makeTree(t, map[string]string{"src/main.go": "package main", "src/util.go": "package util", "other.txt": "x"})
	tree, _ := NewTree(dir, nil)
	sum := func() string {
		s, err := tree.Checksum("src", nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	before := sum()
	steps := []struct {
		name   string
		change func()
		same   bool
	}{
		{"touch", func() { os.Chtimes(filepath.Join(dir, "src/main.go"), time.Now(), time.Now().Add(time.Hour)) }, true},
		{"unrelated file", func() { os.WriteFile(filepath.Join(dir, "other.txt"), []byte("y"), 0o644) }, true},
		{"edit", func() { os.WriteFile(filepath.Join(dir, "src/main.go"), []byte("package main // x"), 0o644) }, false},
		{"chmod", func() { os.Chmod(filepath.Join(dir, "src/util.go"), 0o755) }, false},
		{"new file", func() { os.WriteFile(filepath.Join(dir, "src/new.go"), nil, 0o644) }, false},
		{"symlink", func() { os.Symlink("main.go", filepath.Join(dir, "src/link")) }, false},
	}
	for _, s := range steps {
		s.change()
		after := sum()
		if (after == before) != s.same {
			t.Errorf("after %s: checksum changed = %v, want %v", s.name, after != before, !s.same)
		}
		before = after
	}
}

type memSums struct {
	mu      sync.Mutex
	m       map[string]FileKey
	sums    map[string][32]byte
	trees   map[string]TreeSums
	hits    int
	lookups int // files looked up one by one
	stored  int
	// treeHits and treesStored count whole-tree records found and stored.
	treeHits, treesStored int
}

func newMemSums() *memSums {
	return &memSums{m: map[string]FileKey{}, sums: map[string][32]byte{}, trees: map[string]TreeSums{}}
}

func (c *memSums) Lookup(paths [][]byte, keys []FileKey) ([][32]byte, []bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	sums := make([][32]byte, len(paths))
	ok := make([]bool, len(paths))
	c.lookups += len(paths)
	for i, p := range paths {
		if k, found := c.m[string(p)]; found && k == keys[i] {
			sums[i], ok[i] = c.sums[string(p)], true
			c.hits++
		}
	}
	return sums, ok
}

func (c *memSums) LookupTree(id []byte) (TreeSums, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	rec, ok := c.trees[string(id)]
	if ok && len(rec.Sums) > 0 {
		c.treeHits++ // counted when it could serve; hashFiles still checks Seen
	}
	return rec, ok
}

func (c *memSums) Store(paths []string, keys []FileKey, sums [][32]byte, tree *TreeSums) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for i, p := range paths {
		c.m[p], c.sums[p] = keys[i], sums[i]
		c.stored++
	}
	if tree != nil {
		c.trees[string(tree.ID)] = *tree
		c.treesStored++
	}
}

func TestChecksumSumCache(t *testing.T) {
	dir := makeTree(t, map[string]string{"a": "aaaa", "b": "bbbb"})
	old := time.Now().Add(-time.Hour)
	for _, f := range []string{"a", "b"} {
		os.Chtimes(filepath.Join(dir, f), old, old)
	}
	// ctime is now: let the sums settle as if hashed a while ago.
	time.Sleep(10 * time.Millisecond)
	sums := newMemSums()
	tree, _ := NewTree(dir, nil)
	tree.Sums = sums
	first, err := tree.Checksum(".", nil)
	if err != nil {
		t.Fatal(err)
	}
	// Files changed less than fineSettle ago are not remembered (their
	// ctime is recent here), so a fresh tree sees the same sum without the
	// cache.
	plain, _ := NewTree(dir, nil)
	if again, _ := plain.Checksum(".", nil); again != first {
		t.Fatalf("checksum with and without the sum cache differ")
	}
	// Remember them by hand as if settled, then change a's content while
	// keeping its size and mtime: the ctime changes, so a is read again.
	for _, f := range []string{"a", "b"} {
		fi, _ := os.Lstat(filepath.Join(dir, f))
		sums.Store([]string{filepath.Join(dir, f)}, []FileKey{fileKey(fi)}, [][32]byte{mustHash(t, filepath.Join(dir, f))}, nil)
	}
	sums.hits = 0
	if got, _ := tree.Checksum(".", nil); got != first || sums.hits != 2 {
		t.Errorf("unchanged tree: checksum changed=%v, cache hits=%d, want same and 2", got != first, sums.hits)
	}
	os.WriteFile(filepath.Join(dir, "a"), []byte("AAAA"), 0o644)
	os.Chtimes(filepath.Join(dir, "a"), old, old)
	sums.hits = 0
	if got, _ := tree.Checksum(".", nil); got == first || sums.hits != 1 {
		t.Errorf("after an edit keeping size and mtime: checksum changed=%v, hits=%d; want changed and 1 hit (b)", got != first, sums.hits)
	}
}

func mustHash(t *testing.T, p string) [32]byte {
	s, err := hashFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// TestChecksumSymlinkStaysInContext: a context symlink to an absolute host
// path is resolved inside the context, as COPY resolves it, so neither the
// checksum nor the cache key ever covers the host's files. Found by
// FuzzChecksum.
func TestChecksumSymlinkStaysInContext(t *testing.T) {
	outside := t.TempDir()
	os.WriteFile(filepath.Join(outside, "secret"), []byte("host"), 0o644)
	dir := makeTree(t, map[string]string{filepath.Join(outside, "secret"): "context"})
	if err := os.Symlink(outside, filepath.Join(dir, "link")); err != nil {
		t.Fatal(err)
	}
	tree, err := NewTree(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	before, err := tree.Checksum("link", nil)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(outside, "secret"), []byte("changed on the host"), 0o644)
	if after, err := tree.Checksum("link", nil); err != nil || after != before {
		t.Fatalf("Checksum(link) = %s, %v after a host file changed; want %s", after, err, before)
	}
	os.WriteFile(filepath.Join(dir, outside, "secret"), []byte("changed in the context"), 0o644)
	if after, _ := tree.Checksum("link", nil); after == before {
		t.Fatal("Checksum(link) did not change with the file the link names inside the context")
	}
}

// TestChecksumDetail: the checksum is Checksum's, and the detail, made
// when asked, names every file below the source by its path in the tree.
func TestChecksumDetail(t *testing.T) {
	dir := makeTree(t, map[string]string{"src/a": "aaaa", "src/sub/b": "bbbb", "other": "x"})
	os.Symlink("a", filepath.Join(dir, "src/link"))
	tree, _ := NewTree(dir, nil)
	want, err := tree.Checksum("src", nil)
	if err != nil {
		t.Fatal(err)
	}
	sum, detail, err := tree.ChecksumDetail("src", nil)
	if err != nil || sum != want {
		t.Fatalf("ChecksumDetail = %s, %v; want %s as Checksum", sum, err, want)
	}
	a := mustHash(t, filepath.Join(dir, "src/a"))
	files := detail()
	if got, want := files["src/a"], "644:"+hex.EncodeToString(a[:8]); got != want {
		t.Errorf("detail of src/a = %q, want %q", got, want)
	}
	if got := files["src/link"]; !strings.HasSuffix(got, ":a") {
		t.Errorf("detail of src/link = %q, want its target", got)
	}
	if _, ok := files["src/sub/b"]; !ok || len(files) != 5 {
		t.Errorf("detail = %v, want src, src/a, src/link, src/sub and src/sub/b", files)
	}
}
