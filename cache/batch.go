package cache

import (
	"reflect"
	"slices"

	bolt "go.etcd.io/bbolt"
)

// PutExport changes snapshot records and names images in one transaction
// (one database sync), for what an export learned: each fn changes its
// record as UpdateSnapshot does, and an image named as it is already
// writes nothing, as with PutImage. The caller must have made every blob
// they name durable first.
func (d *DB) PutExport(updates map[string]func(*Snapshot), images []Image) error {
	images = slices.DeleteFunc(slices.Clone(images), d.named)
	if len(updates) == 0 && len(images) == 0 {
		return nil
	}
	return d.update(func(tx *bolt.Tx) error {
		for id, fn := range updates {
			if err := updateSnapshot(tx, id, fn); err != nil {
				return err
			}
		}
		for _, img := range images {
			if err := put(tx, bucketImages, img.Name, img); err != nil {
				return err
			}
		}
		return nil
	})
}

// named reports whether img is in the store as it is, Created aside.
func (d *DB) named(img Image) bool {
	old, err := d.Image(img.Name)
	old.Created = img.Created
	return err == nil && reflect.DeepEqual(old, img)
}
