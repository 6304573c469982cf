package gc

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/builder-dev/builder/cache"
	"github.com/builder-dev/builder/solver"
	"github.com/opencontainers/go-digest"
)

// TestFinishUseOneWrite: the end of a build writes its last-use times, its
// step records and the file digests it read in one transaction (they are
// hints that ride along), and a build that changed nothing writes nothing.
func TestFinishUseOneWrite(t *testing.T) {
	root := t.TempDir()
	c := openCollector(t, root)
	if err := c.DB.PutSnapshot(cache.Snapshot{ID: "1", Created: time.Now().UTC(), Size: 10, Measured: true, Counted: 10}); err != nil {
		t.Fatal(err)
	}
	key := digest.FromString("k")
	policy := &Policy{KeepStorage: 1 << 40}
	warn := func(w string) { t.Error(w) }

	ctx, use := startUse(t, c)
	w := c.DB.Writes()
	checksum(t, makeContexts(t, filepath.Join(root, "ctx"), 1, 5)[0], c.DB.FileSums())
	c.DB.PutSteps(map[string][]byte{"step": []byte("record")})
	if err := use.Record(ctx, solver.Result{Snapshot: "1"}, key); err != nil {
		t.Fatal(err)
	}
	c.FinishUse(ctx, use, policy, warn)
	// The record's transaction carries the queued digests and step record.
	if n := c.DB.Writes() - w; n != 2 {
		t.Errorf("a build recording one step: %d write transactions, want 2 (the record, then Touch with the hints)", n)
	}
	if c.DB.HintsPending() {
		t.Error("hints left queued after FinishUse")
	}
	if _, ok := c.DB.Step("step"); !ok {
		t.Error("the step record is missing")
	}

	// A no-op rebuild right after: a hit, nothing to write.
	ctx, use = startUse(t, c)
	w = c.DB.Writes()
	if _, ok, err := use.Lookup(ctx, key); !ok || err != nil {
		t.Fatalf("Lookup = %v, %v", ok, err)
	}
	c.FinishUse(ctx, use, policy, warn)
	if n := c.DB.Writes() - w; n != 0 {
		t.Errorf("a no-op build: %d write transactions, want none", n)
	}

	// Hints with nothing to touch: one transaction of their own.
	ctx, use = startUse(t, c)
	w = c.DB.Writes()
	c.DB.PutSteps(map[string][]byte{"step": []byte("record 2")})
	c.FinishUse(ctx, use, policy, warn)
	if v, _ := c.DB.Step("step"); c.DB.Writes()-w != 1 || string(v) != "record 2" || c.DB.HintsPending() {
		t.Errorf("a build with step records only: %d writes, record %q, pending %v; want 1, the new record, none", c.DB.Writes()-w, v, c.DB.HintsPending())
	}
}
