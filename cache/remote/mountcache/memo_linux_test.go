package mountcache

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/builder-dev/builder/cache/content"
)

func exportParts(t *testing.T, store *content.Store, dir string) []Part {
	t.Helper()
	e, err := Export(t.Context(), store, Mount{Key: testMountKey, ID: "/cache", Dir: dir}, DefaultMaxSize, func(w string) { t.Error("warning:", w) })
	if err != nil {
		t.Fatal(err)
	}
	return e.Parts
}

// TestExportMemo: an export reuses the parts the last one made while
// their files are untouched (shown by a memo edited to name another
// blob), and makes a part again when a file of it is rewritten with the
// same size and modification time, or when its blob is gone.
func TestExportMemo(t *testing.T) {
	store, err := content.NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "0")
	os.MkdirAll(filepath.Join(dir, "sub"), 0o755)
	when := time.Unix(1700000000, 0)
	for _, f := range []string{"a", "sub/b"} {
		os.WriteFile(filepath.Join(dir, f), []byte("one"), 0o644)
		os.Chtimes(filepath.Join(dir, f), when, when)
	}
	first := exportParts(t, store, dir)
	if len(first) != 1 {
		t.Fatalf("parts %+v, want one", first)
	}

	// The memo is trusted while the files are untouched.
	memo := loadMemo(dir)
	other, _ := store.WriteBytes(t.Context(), []byte("other"))
	for k, e := range memo {
		e.Part.Blob.Digest = other
		memo[k] = e
	}
	if err := saveMemo(dir, memo); err != nil {
		t.Fatal(err)
	}
	if got := exportParts(t, store, dir); got[0].Blob.Digest != other {
		t.Errorf("untouched files: part %s, want the memo's %s", got[0].Blob.Digest, other)
	}

	// Same size, same mtime, other content: the change time tells.
	os.WriteFile(filepath.Join(dir, "sub", "b"), []byte("two"), 0o644)
	os.Chtimes(filepath.Join(dir, "sub", "b"), when, when)
	got := exportParts(t, store, dir)
	if got[0].Blob.Digest == other || got[0].Blob.Digest == first[0].Blob.Digest {
		t.Errorf("rewritten file: part %s, want a new one", got[0].Blob.Digest)
	}

	// A blob pruned from the store is made again.
	if err := store.Delete(got[0].Blob.Digest); err != nil {
		t.Fatal(err)
	}
	again := exportParts(t, store, dir)
	if again[0].Blob.Digest != got[0].Blob.Digest || !store.Exists(again[0].Blob.Digest) {
		t.Errorf("after the blob was pruned: %s (exists %v), want %s made again", again[0].Blob.Digest, store.Exists(again[0].Blob.Digest), got[0].Blob.Digest)
	}
	raw, _ := os.ReadFile(memoPath(dir))
	var m map[string]memoEntry
	if json.Unmarshal(raw, &m) != nil || len(m) != 1 {
		t.Errorf("memo %s: want one part", raw)
	}
}
