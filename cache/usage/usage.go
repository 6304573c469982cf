// Package usage keeps the cache's records of use: last-use times, the
// measured size of each snapshot and the running usage total that the
// automatic GC compares with its limit, in step with the records (a
// snapshot's Counted is in the total exactly while its record exists).
package usage

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/builder-dev/builder/cache"
	"github.com/builder-dev/builder/cache/internal/schema"
	"github.com/opencontainers/go-digest"
	bolt "go.etcd.io/bbolt"
)

// TouchResolution is how stale a last-use time may be before Touch writes
// it again: a rebuild within this time of the last one writes nothing, so
// a no-op rebuild pays for no extra transaction.
const TouchResolution = time.Minute

// Use is what one build used of the cache, for Touch.
type Use struct {
	// Snapshots are result snapshots; their whole chains count as used.
	Snapshots []string
	Keys      []digest.Digest
	Time      time.Time
}

// Touch records u's last-use times, and measures (with measure, outside
// any transaction) the snapshots of u never measured, adding them to the
// running usage total. It writes in one transaction, and not at all when
// every record was touched less than TouchResolution before u.Time and
// nothing needs measuring.
func Touch(d *cache.DB, u Use, measure func(id string) (int64, error)) error {
	stale := func(last time.Time) bool {
		return last.Before(u.Time.Add(-TouchResolution)) || last.After(u.Time)
	}
	var unmeasured []string
	write := false
	err := d.View(func(tx *bolt.Tx) error {
		return touchWalk(tx, u, func(s *cache.Snapshot) bool {
			if !s.Measured {
				unmeasured = append(unmeasured, s.ID)
			}
			if !s.Measured || stale(s.LastUsed) || s.Counted != s.Size+blobBytes(*s) {
				write = true
			}
			return false
		}, func(r *cache.Result) bool {
			if stale(r.LastUsed) {
				write = true
			}
			return false
		})
	})
	if err != nil || !write {
		return err
	}
	sizes := map[string]int64{}
	// A snapshot that cannot be measured stays unmeasured (0 in the
	// total, measured again at its next use) and its error is returned
	// after the last-use times are written: failing the whole Touch would
	// leave every record stale, to be pruned while in use.
	var merrs []error
	for _, id := range unmeasured {
		n, err := measure(id)
		if err != nil {
			merrs = append(merrs, err)
			continue
		}
		sizes[id] = n
	}
	err = d.Update(func(tx *bolt.Tx) error {
		var delta int64
		// Only records that change are stored again: a build that
		// made one new layer rewrites its records and the stale ones,
		// not every record of its chains (pages written for nothing).
		err := touchWalk(tx, u, func(s *cache.Snapshot) bool {
			changed := false
			if n, ok := sizes[s.ID]; ok && !s.Measured {
				s.Size, s.Measured, changed = n, true, true
			}
			if stale(s.LastUsed) {
				s.LastUsed, changed = u.Time, true
			}
			if c := s.Size + blobBytes(*s); s.Measured && c != s.Counted {
				delta += c - s.Counted
				s.Counted, changed = c, true
			}
			return changed
		}, func(r *cache.Result) bool {
			if !stale(r.LastUsed) {
				return false
			}
			r.LastUsed = u.Time
			return true
		})
		if err != nil {
			return err
		}
		return schema.AddUsage(tx, delta)
	})
	return errors.Join(append([]error{err}, merrs...)...)
}

// touchWalk calls fs on each record of the chains of u.Snapshots and of the
// keys' results, once each, and fr on each key record; in a writable
// transaction it stores the records for which they return true.
func touchWalk(tx *bolt.Tx, u Use, fs func(*cache.Snapshot) bool, fr func(*cache.Result) bool) error {
	snaps, keys := tx.Bucket(schema.Snapshots), tx.Bucket(schema.Keys)
	seen := map[string]bool{}
	walk := func(top string) error {
		for cur := top; cur != "" && !seen[cur]; {
			seen[cur] = true
			raw := snaps.Get([]byte(cur))
			if raw == nil {
				return nil // removed meanwhile: nothing to touch
			}
			var s cache.Snapshot
			if err := json.Unmarshal(raw, &s); err != nil {
				return fmt.Errorf("snapshot %s: %w", cur, err)
			}
			if fs(&s) && tx.Writable() {
				if err := schema.Put(tx, schema.Snapshots, s.ID, s); err != nil {
					return err
				}
			}
			cur = s.Parent
		}
		return nil
	}
	for _, k := range u.Keys {
		raw := keys.Get([]byte(k.String()))
		if raw == nil {
			continue
		}
		var r cache.Result
		if err := json.Unmarshal(raw, &r); err != nil {
			return fmt.Errorf("cache key %s: %w", k, err)
		}
		if fr(&r) && tx.Writable() {
			if err := schema.Put(tx, schema.Keys, k.String(), r); err != nil {
				return err
			}
		}
		if err := walk(r.Snapshot); err != nil {
			return err
		}
	}
	for _, id := range u.Snapshots {
		if err := walk(id); err != nil {
			return err
		}
	}
	return nil
}

func blobBytes(s cache.Snapshot) int64 {
	var n int64
	for _, b := range s.Blobs {
		n += b.Size
	}
	return n
}

// Total returns the running total of the bytes counted in snapshot records
// (layer directories and their compressed blobs): what the automatic GC
// compares with its limit without walking the disk. Records not yet
// measured (left by a killed build) are missing from it until a prune.
func Total(d *cache.DB) (int64, error) {
	var n int64
	err := d.View(func(tx *bolt.Tx) error { n = schema.Usage(tx); return nil })
	return n, err
}

// Delete removes cache key records, layer records and snapshot records in
// one transaction, taking the snapshots out of the running usage total.
// Missing records are not an error. The caller removes the files after.
func Delete(d *cache.DB, keys, layers []digest.Digest, snapshots []string) error {
	return d.Update(func(tx *bolt.Tx) error {
		for _, k := range keys {
			if err := tx.Bucket(schema.Keys).Delete([]byte(k.String())); err != nil {
				return err
			}
		}
		for _, l := range layers {
			if err := tx.Bucket(schema.Layers).Delete([]byte(l.String())); err != nil {
				return err
			}
		}
		b := tx.Bucket(schema.Snapshots)
		var delta int64
		for _, id := range snapshots {
			raw := b.Get([]byte(id))
			if raw == nil {
				continue
			}
			var s cache.Snapshot
			if err := json.Unmarshal(raw, &s); err == nil {
				delta -= s.Counted
			}
			if err := b.Delete([]byte(id)); err != nil {
				return err
			}
		}
		return schema.AddUsage(tx, delta)
	})
}

// Resync stores measured sizes of snapshot records and recomputes every
// record's Counted and the running usage total from scratch, in one
// transaction. Sizes of ids without a record are ignored.
func Resync(d *cache.DB, sizes map[string]int64) error {
	return d.Update(func(tx *bolt.Tx) error {
		b := tx.Bucket(schema.Snapshots)
		var total int64
		var recs []cache.Snapshot
		err := b.ForEach(func(k, v []byte) error {
			var s cache.Snapshot
			if err := json.Unmarshal(v, &s); err != nil {
				return fmt.Errorf("snapshot %s: %w", k, err)
			}
			recs = append(recs, s)
			return nil
		})
		if err != nil {
			return err
		}
		for _, s := range recs {
			changed := false
			if n, ok := sizes[s.ID]; ok && (!s.Measured || s.Size != n) {
				s.Size, s.Measured, changed = n, true, true
			}
			if s.Measured {
				if c := s.Size + blobBytes(s); c != s.Counted {
					s.Counted, changed = c, true
				}
				total += s.Counted
			}
			if changed {
				if err := schema.Put(tx, schema.Snapshots, s.ID, s); err != nil {
					return err
				}
			}
		}
		return schema.SetUsage(tx, total)
	})
}
