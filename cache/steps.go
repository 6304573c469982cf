package cache

import (
	"bytes"

	bolt "go.etcd.io/bbolt"
)

var bucketSteps = []byte("steps")

// Step returns the record last stored for a build step, by step id: what
// its cache key covered, kept to explain the next build's cache misses.
func (d *DB) Step(id string) ([]byte, bool) {
	if v, ok := d.hint(bucketSteps, id); ok {
		return append([]byte(nil), v...), true
	}
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
	if v, ok := d.hint(bucketSteps, id); ok {
		return bytes.HasPrefix(v, prefix)
	}
	has := false
	d.view(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketSteps); b != nil {
			has = bytes.HasPrefix(b.Get([]byte(id)), prefix)
		}
		return nil
	})
	return has
}

// PutSteps stores step records. They are hints (see hints.go): they
// explain the next build's cache misses and nothing trusts them, so they
// are written with the next write transaction (at the latest the end of
// the build's, FlushHints), not in one of their own.
func (d *DB) PutSteps(records map[string][]byte) {
	for id, v := range records {
		d.putHint(bucketSteps, id, v)
	}
}
