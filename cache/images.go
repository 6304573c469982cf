package cache

import (
	"fmt"

	bolt "go.etcd.io/bbolt"
)

// DeleteImage removes a name from the local store. The image's snapshots
// and blobs stay until a prune finds nothing else uses them.
func (d *DB) DeleteImage(name string) error {
	return d.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketImages)
		if b.Get([]byte(name)) == nil {
			return fmt.Errorf("image %s: %w", name, ErrNotFound)
		}
		return b.Delete([]byte(name))
	})
}
