package cache

import (
	"encoding/binary"
	"maps"
	"slices"

	"github.com/builder-dev/builder/cache/internal/hintq"
	bolt "go.etcd.io/bbolt"
)

// Hints are records that only save work later: file digests (FileSums),
// when a context root was last used, step history (PutSteps). Nothing
// trusts them for a result: a file digest holds only while its file's
// size, times and inode match, a step record only explains a cache miss.
// Losing them in a crash costs a re-hash or a vaguer explanation, so they
// do not pay a write transaction (two fdatasyncs) of their own: they wait
// in memory, visible to this DB's lookups, and are written in the next
// write transaction that happens anyway, or by FlushHints (the end of a
// build, Close).
//
// bbolt's NoSync would also save the syncs, but is not safe for hints
// only: a commit without its fdatasyncs can reach the disk with its meta
// page before its pages, and a later commit may reuse the pages the
// unsynced one freed, so a host crash could corrupt the whole file,
// durable records included.
//
// The queue (cache/internal/hintq) is bounded: past hintq.Max values a new
// hint is dropped, so it cannot grow while writes keep failing.

// putHint queues value v under key in bucket (dropped if the queue is
// full).
func (d *DB) putHint(bucket []byte, key string, v []byte) bool {
	return d.hints.Put(string(bucket), key, v)
}

// hint returns the value queued (or in a write transaction) under key in
// bucket, if any.
func (d *DB) hint(bucket []byte, key string) ([]byte, bool) {
	return d.hints.Get(string(bucket), key)
}

// writeHints writes the queued hints in tx. It is best effort: a put
// that fails is skipped (a hint is only a saving), so that the records
// of the transaction it rides in are never refused for a hint.
func writeHints(tx *bolt.Tx, batch *hintq.Batch) {
	for bucket, kv := range batch.Puts {
		b, err := tx.CreateBucketIfNotExists([]byte(bucket))
		if err != nil {
			continue
		}
		// In key order: bbolt inserts into a sorted slice and splits
		// pages only at commit, so a large transaction of keys in random
		// order moves memory quadratically (22 s for 65k digests).
		for _, k := range slices.Sorted(maps.Keys(kv)) {
			b.Put([]byte(k), kv[k])
		}
	}
	if batch.Added > 0 {
		countAdded(tx, batch.Added)
	}
}

// HintsPending reports whether hints wait to be written.
func (d *DB) HintsPending() bool { return d.hints.Pending() }

// FlushHints writes the queued hints in one transaction, or nothing when
// none are queued.
func (d *DB) FlushHints() error {
	if !d.HintsPending() {
		return nil
	}
	return d.update(func(*bolt.Tx) error { return nil })
}

// countAdded adds n to the digests stored since the last Prune.
func countAdded(tx *bolt.Tx, n int) error {
	mb, err := tx.CreateBucketIfNotExists(bucketMeta)
	if err != nil {
		return err
	}
	var cur uint64
	if v := mb.Get(metaFileSumsAdded); len(v) == 8 {
		cur = binary.LittleEndian.Uint64(v)
	}
	return mb.Put(metaFileSumsAdded, binary.LittleEndian.AppendUint64(nil, cur+uint64(n)))
}
