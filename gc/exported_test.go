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
