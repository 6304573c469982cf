package cache

import (
	"bytes"

	bolt "go.etcd.io/bbolt"
)

var bucketSteps = []byte("steps")

// Step returns the record last stored for a build step, by step id: what
// its cache key covered, kept to explain the next build's cache misses.
func (d *DB) Step(id string) ([]byte, bool) {
	var out []byte
	d.view(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketSteps); b != nil {
			if v := b.Get([]byte(id)); v != nil {
				out = append([]byte(nil), v...)
			}
		}
		return nil
	})
	return out, out != nil
}

// StepHasPrefix reports whether the step record id begins with prefix,
// without copying it out (a COPY's record has a part per file).
func (d *DB) StepHasPrefix(id string, prefix []byte) bool {
	has := false
	d.view(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketSteps); b != nil {
			has = bytes.HasPrefix(b.Get([]byte(id)), prefix)
		}
		return nil
	})
	return has
}

// PutSteps stores step records in one transaction.
func (d *DB) PutSteps(records map[string][]byte) error {
	if len(records) == 0 {
		return nil
	}
	return d.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketSteps)
		if err != nil {
			return err
		}
		for id, v := range records {
			if err := b.Put([]byte(id), v); err != nil {
				return err
			}
		}
		return nil
	})
}
