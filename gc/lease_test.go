package gc

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/builder-dev/builder/cache"
	"github.com/builder-dev/builder/cache/content"
	"github.com/builder-dev/builder/kept"
	"github.com/builder-dev/builder/snapshot"
	"github.com/builder-dev/builder/solver"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// dbCache is the state directory's cache as a build's solver sees it.
type dbCache struct{ db *cache.DB }

func (c dbCache) Lookup(ctx context.Context, key digest.Digest) (solver.Result, bool, error) {
	r, err := c.db.Lookup(ctx, key)
	return solver.Result{Snapshot: r.Snapshot}, err == nil, nil
}

func (c dbCache) Record(_ context.Context, r solver.Result, keys ...digest.Digest) error {
	return c.db.RecordStep(nil, cache.Result{Snapshot: r.Snapshot, Created: time.Now().UTC()}, keys...)
}

func openCollector(t *testing.T, root string) *Collector {
	t.Helper()
	db, err := cache.Open(filepath.Join(root, "meta.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	cs, err := content.NewStore(filepath.Join(root, "content"))
	if err != nil {
		t.Fatal(err)
	}
	snaps, err := snapshot.NewSnapshotter(filepath.Join(root, "snapshots"), snapshot.WithCopy(true), snapshot.WithTempDir(filepath.Join(root, "tmp")))
	if err != nil {
		t.Fatal(err)
	}
	return &Collector{Root: root, DB: db, Content: cs, Snapshots: snaps, Kept: &kept.Store{Dir: filepath.Join(root, "kept")}}
}

// addResult makes a committed snapshot and a cache key naming it, an hour
// old, and returns the key.
func addResult(t *testing.T, c *Collector, name string) digest.Digest {
	t.Helper()
	id, err := c.DB.NewSnapshotID(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Snapshots.Prepare(id); err != nil {
		t.Fatal(err)
	}
	if err := c.Snapshots.Commit(id); err != nil {
		t.Fatal(err)
	}
	old := time.Now().UTC().Add(-time.Hour)
	if err := c.DB.PutSnapshot(cache.Snapshot{ID: id, Created: old, Description: name}); err != nil {
		t.Fatal(err)
	}
	key := digest.FromString(name)
	if err := c.DB.Record(key, cache.Result{Snapshot: id, Created: old}); err != nil {
		t.Fatal(err)
	}
	return key
}

func keys(t *testing.T, db *cache.DB) map[digest.Digest]cache.Result {
	t.Helper()
	ks, err := db.Keys()
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// openServing opens root as a long-lived process does (builder serve):
// each build has a lease, the DB none of its own.
func openServing(t *testing.T, root string) *Collector {
	t.Helper()
	c := openCollector(t, root)
	if err := c.DB.ReleaseOwnLease(); err != nil {
		t.Fatal(err)
	}
	return c
}

func startUse(t *testing.T, c *Collector) (context.Context, *Use) {
	t.Helper()
	ctx, u, err := c.StartUse(t.Context(), dbCache{c.DB})
	if err != nil {
		t.Fatal(err)
	}
	return ctx, u
}

// Two builds in one long-lived process (as in builder serve) each have
// a lease: once one ends, a prune, here or in another process, removes
// what only it used and keeps what the other, still running, uses.
func TestLeasePerBuild(t *testing.T) {
	root := t.TempDir()
	setup := openCollector(t, root)
	keyA, keyB := addResult(t, setup, "used by A"), addResult(t, setup, "used by B")
	setup.DB.Close() // its own lease goes with it

	serve := openServing(t, root)
	ctxA, useA := startUse(t, serve)
	ctxB, useB := startUse(t, serve)
	for _, l := range []struct {
		ctx context.Context
		use *Use
		key digest.Digest
	}{{ctxA, useA, keyA}, {ctxB, useB, keyB}} {
		if _, ok, err := l.use.Lookup(l.ctx, l.key); !ok || err != nil {
			t.Fatalf("lookup of %s: %v, %v", l.key, ok, err)
		}
	}
	serve.FinishUse(ctxA, useA, &Policy{}, func(w string) { t.Error(w) })

	other := openCollector(t, root)
	if _, err := other.Prune(t.Context(), PruneOptions{All: true}); err != nil {
		t.Fatal(err)
	}
	ks := keys(t, other.DB)
	if _, ok := ks[keyA]; ok {
		t.Error("a prune in another process kept what only a finished build of the server used")
	}
	if r, ok := ks[keyB]; !ok || !other.Snapshots.Exists(r.Snapshot) {
		t.Error("a prune in another process removed what a running build of the server uses")
	}
	if _, err := serve.Prune(t.Context(), PruneOptions{All: true}); err != nil {
		t.Fatal(err)
	}
	if _, ok := keys(t, serve.DB)[keyB]; !ok {
		t.Error("a prune in the server's process removed what its running build uses")
	}

	serve.FinishUse(ctxB, useB, &Policy{}, func(w string) { t.Error(w) })
	if _, err := other.Prune(t.Context(), PruneOptions{All: true}); err != nil {
		t.Fatal(err)
	}
	if ks := keys(t, other.DB); len(ks) != 0 {
		t.Errorf("after both builds ended a prune kept %d cache keys", len(ks))
	}
}

// A build that exports an image whose manifest and config were in the
// content store already (an earlier identical build, no longer named)
// leases them in its lease file: a prune --all in another process, which
// would remove such old unnamed manifests, spares them until the build
// ends. When a prune removed them between the exporter's write (which
// found them present) and the lease, Exported writes them again.
func TestExportedBlobsLeasedAcrossProcesses(t *testing.T) {
	for _, removed := range []bool{false, true} {
		root := t.TempDir()
		setup := openCollector(t, root)
		cfgRaw := []byte(`{"architecture":"amd64"}`)
		config, err := setup.Content.WriteBytes(t.Context(), cfgRaw)
		if err != nil {
			t.Fatal(err)
		}
		m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: ocispec.Descriptor{Digest: config}}
		m.SchemaVersion = 2
		raw, err := json.Marshal(m)
		if err != nil {
			t.Fatal(err)
		}
		manifest, err := setup.Content.WriteBytes(t.Context(), raw)
		if err != nil {
			t.Fatal(err)
		}
		old := time.Now().Add(-time.Hour)
		for _, d := range []digest.Digest{config, manifest} {
			if err := os.Chtimes(setup.Content.Path(d), old, old); err != nil {
				t.Fatal(err)
			}
		}
		setup.DB.Close()

		builder := openServing(t, root)
		ctx, use := startUse(t, builder)
		other := openCollector(t, root)
		if removed {
			// The prune that ran after the exporter found both present.
			if _, err := other.Prune(t.Context(), PruneOptions{All: true}); err != nil {
				t.Fatal(err)
			}
			if other.Content.Exists(manifest) {
				t.Fatal("the prune before the lease kept the old manifest")
			}
		}
		if err := use.Exported(ctx, ocispec.Descriptor{Digest: manifest}, raw, cfgRaw); err != nil {
			t.Fatal(err)
		}
		if _, err := other.Prune(t.Context(), PruneOptions{All: true}); err != nil {
			t.Fatal(err)
		}
		for _, d := range []digest.Digest{config, manifest} {
			if !other.Content.Exists(d) {
				t.Errorf("removed=%v: blob %s of the image a running build exported is missing after a prune", removed, d)
			}
		}
		builder.FinishUse(ctx, use, &Policy{}, func(w string) { t.Error(w) })
		if _, err := other.Prune(t.Context(), PruneOptions{All: true}); err != nil {
			t.Fatal(err)
		}
		for _, d := range []digest.Digest{config, manifest} {
			if other.Content.Exists(d) {
				t.Errorf("blob %s is left after the build ended and a prune --all", d)
			}
		}
	}
}
