package stephistory

import (
	"fmt"
	"path/filepath"
	"runtime"
	"testing"

	"github.com/builder-dev/builder/cache"
	"github.com/builder-dev/builder/llb"
	"github.com/builder-dev/builder/solver"
)

// newHistory is a History of scope "ctx" in a new state dir's database.
func newHistory(t *testing.T) *History {
	db, err := cache.Open(filepath.Join(t.TempDir(), "meta.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return New(db, "ctx")
}

// TestStepHistorySameKey: a step whose key is the one recorded is not
// written again (its parts follow from the key), one with a new key is,
// and what Previous reads back is what was remembered.
func TestStepHistorySameKey(t *testing.T) {
	h := newHistory(t)
	k1, k2 := llb.DigestStrings("one"), llb.DigestStrings("two")
	rec := solver.StepRecord{Key: k1, Parts: map[string]string{"file:a": "644:aa", "file:b": "644:bb"}}
	h.Remember("s", rec)
	if err := h.Flush(); err != nil {
		t.Fatal(err)
	}
	if got, ok := h.Previous("s"); !ok || got.Key != k1 || len(got.Parts) != 2 {
		t.Fatalf("Previous = %v, %v; want the remembered record", got, ok)
	}
	if len(h.dirty) != 0 {
		t.Fatalf("Flush left %d records to write again", len(h.dirty))
	}
	h.Remember("s", solver.StepRecord{Key: k1, Parts: map[string]string{"other": "parts"}})
	if len(h.dirty) != 0 {
		t.Errorf("a record of the same key was written again")
	}
	h.Remember("s", solver.StepRecord{Key: k2, Parts: rec.Parts})
	if len(h.dirty) != 1 {
		t.Errorf("a record of a new key was not written")
	}
}

// TestStepHistoryDescribesNewKeysOnly: a record's parts are asked of
// Describe only when its key is new, and are then written.
func TestStepHistoryDescribesNewKeysOnly(t *testing.T) {
	h := newHistory(t)
	k1, k2 := llb.DigestStrings("one"), llb.DigestStrings("two")
	calls := 0
	describe := func() map[string]string { calls++; return map[string]string{"file:a": "644:aa"} }
	h.Remember("s", solver.StepRecord{Key: k1, Describe: describe})
	if err := h.Flush(); err != nil {
		t.Fatal(err)
	}
	if got, _ := h.Previous("s"); calls != 1 || got.Parts["file:a"] != "644:aa" {
		t.Fatalf("new key: Describe called %d times, record read back %v; want once, with its parts", calls, got)
	}
	h.Remember("s", solver.StepRecord{Key: k1, Describe: describe})
	if calls != 1 {
		t.Errorf("the recorded key: Describe called again")
	}
	h.Remember("s", solver.StepRecord{Key: k2, Describe: describe})
	if calls != 2 || len(h.dirty) != 1 {
		t.Errorf("another key: Describe called %d times in all, %d records to write; want 2 and 1", calls, len(h.dirty))
	}
}

// TestStepHistoryCurrentRecordNotCopied: remembering the key a large
// record already has (a COPY of 20,000 files has a part each) reads
// little, rather than copying the record out of the database.
func TestStepHistoryCurrentRecordNotCopied(t *testing.T) {
	h := newHistory(t)
	k := llb.DigestStrings("one")
	parts := map[string]string{}
	for i := range 20000 {
		parts[fmt.Sprintf("file:src/dir%d/file%d", i/100, i)] = "644:0123456789abcdef"
	}
	h.Remember("s", solver.StepRecord{Key: k, Parts: parts})
	if err := h.Flush(); err != nil {
		t.Fatal(err)
	}
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	h.Remember("s", solver.StepRecord{Key: k, Describe: func() map[string]string { return parts }})
	runtime.ReadMemStats(&after)
	if n := after.TotalAlloc - before.TotalAlloc; n > 64<<10 {
		t.Errorf("remembering the recorded key of a %d-part record allocated %d bytes, want at most 64 KiB", len(parts), n)
	}
}
