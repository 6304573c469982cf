package gc

import (
	"encoding/json"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestLeaseTreeIndex: an index's attestation manifest and its statement
// blob are leased through the index, written again when a prune removed
// them before the lease, and spared by a prune in another process; the
// manifests in skip are not read.
func TestLeaseTreeIndex(t *testing.T) {
	root := t.TempDir()
	builder := openServing(t, root)
	ctx, use := startUse(t, builder)
	statement := []byte(`{"_type":"https://in-toto.io/Statement/v0.1"}`)
	att := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest,
		Config: ocispec.Descriptor{Digest: digest.FromBytes([]byte("{}"))},
		Layers: []ocispec.Descriptor{{Digest: digest.FromBytes(statement)}}}
	att.SchemaVersion = 2
	attRaw, _ := json.Marshal(att)
	// The platform image's manifest is not in the store: skip keeps
	// LeaseTree from reading it.
	platformImage := digest.FromString("leased by Exported")
	idx := ocispec.Index{Manifests: []ocispec.Descriptor{{Digest: platformImage}, {Digest: digest.FromBytes(attRaw)}}}
	idx.SchemaVersion = 2
	idxRaw, _ := json.Marshal(idx)
	all := [][]byte{[]byte("{}"), statement, attRaw, idxRaw}
	writes := 0
	write := func() error {
		writes++
		for _, b := range all {
			if _, err := builder.Content.WriteBytes(ctx, b); err != nil {
				return err
			}
		}
		return nil
	}
	if err := write(); err != nil {
		t.Fatal(err)
	}
	// A prune between the write and the lease.
	for _, b := range all[:3] {
		if err := builder.Content.Delete(digest.FromBytes(b)); err != nil {
			t.Fatal(err)
		}
	}
	skip := map[digest.Digest]bool{platformImage: true}
	if err := use.LeaseTree(ctx, digest.FromBytes(idxRaw), skip, write); err != nil {
		t.Fatal(err)
	}
	if writes != 2 {
		t.Errorf("the tree was written %d times, want 2 (once again for the removed blobs)", writes)
	}
	other := openCollector(t, root)
	if _, err := other.Prune(t.Context(), PruneOptions{All: true}); err != nil {
		t.Fatal(err)
	}
	for _, b := range all {
		if d := digest.FromBytes(b); !other.Content.Exists(d) {
			t.Errorf("blob %s of the index is missing after a prune", d)
		}
	}
	builder.FinishUse(ctx, use, &Policy{}, func(w string) { t.Error(w) })
}

// TestExportedHoldsOnce: Exported leases an image's manifest, config and
// layers under one hold of the database (a hold makes other processes
// wait), and a process looking at the leases sees all three.
func TestExportedHoldsOnce(t *testing.T) {
	root := t.TempDir()
	builder := openServing(t, root)
	ctx, use := startUse(t, builder)
	cfgRaw := []byte(`{"architecture":"amd64"}`)
	layer := []byte("layer data")
	var ds []digest.Digest
	for _, b := range [][]byte{cfgRaw, layer} {
		d, err := builder.Content.WriteBytes(ctx, b)
		if err != nil {
			t.Fatal(err)
		}
		ds = append(ds, d)
	}
	m := ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest, Config: ocispec.Descriptor{Digest: ds[0]},
		Layers: []ocispec.Descriptor{{Digest: ds[1]}}}
	m.SchemaVersion = 2
	raw, _ := json.Marshal(m)
	manifest, err := builder.Content.WriteBytes(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	holds := builder.DB.Holds()
	if err := use.Exported(ctx, ocispec.Descriptor{Digest: manifest}, raw, cfgRaw); err != nil {
		t.Fatal(err)
	}
	if n := builder.DB.Holds() - holds; n != 1 {
		t.Errorf("Exported held the database %d times, want 1", n)
	}
	other := openCollector(t, root)
	leases, err := other.DB.Leases()
	if err != nil {
		t.Fatal(err)
	}
	leased := map[digest.Digest]bool{}
	for _, l := range leases {
		for _, b := range l.Blobs {
			leased[b] = true
		}
	}
	for _, d := range []digest.Digest{manifest, ds[0], ds[1]} {
		if !leased[d] {
			t.Errorf("blob %s of the exported image is not in the build's lease", d)
		}
	}
	builder.FinishUse(ctx, use, &Policy{}, func(w string) { t.Error(w) })
}
