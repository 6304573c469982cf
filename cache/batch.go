package cache

import (
	"encoding/json"
	"fmt"
	"reflect"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
)

// BlobMemo is a blob an export made of a snapshot, for its record's Blobs.
type BlobMemo struct {
	Snapshot string
	// Key names the blob in Snapshot.Blobs.
	Key  string
	Blob ocispec.Descriptor
	// DiffID, when set, becomes the record's DiffID.
	DiffID digest.Digest
}

// PutExport writes what an export learned in one transaction (one
// database sync): blobs added to their snapshots' records, kept with
// what others changed in those records meanwhile, and image names, where
// a name given the image it has already writes nothing (as PutImage).
// The caller must have made every blob named durable first.
func (d *DB) PutExport(memos []BlobMemo, images []Image) error {
	var changed []Image
	for _, img := range images {
		if old, err := d.Image(img.Name); err == nil {
			old.Created = img.Created
			if reflect.DeepEqual(old, img) {
				continue
			}
		}
		changed = append(changed, img)
	}
	if len(memos) == 0 && len(changed) == 0 {
		return nil
	}
	return d.update(func(tx *bolt.Tx) error {
		for _, m := range memos {
			raw := tx.Bucket(bucketSnapshots).Get([]byte(m.Snapshot))
			if raw == nil {
				return fmt.Errorf("snapshot %s: %w", m.Snapshot, ErrNotFound)
			}
			var s Snapshot
			if err := json.Unmarshal(raw, &s); err != nil {
				return fmt.Errorf("snapshot %s: %w", m.Snapshot, err)
			}
			if s.Blobs == nil {
				s.Blobs = map[string]ocispec.Descriptor{}
			}
			s.Blobs[m.Key] = m.Blob
			if m.DiffID != "" {
				s.DiffID = m.DiffID
			}
			if err := put(tx, bucketSnapshots, m.Snapshot, s); err != nil {
				return err
			}
		}
		for _, img := range changed {
			if err := put(tx, bucketImages, img.Name, img); err != nil {
				return err
			}
		}
		return nil
	})
}
