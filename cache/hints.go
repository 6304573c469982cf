package cache

import (
	"encoding/binary"
	"maps"
	"slices"
	"sync"

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
type hints struct {
	mu sync.Mutex
	// n counts the queued values, for maxQueuedHints.
	n int
	// puts is bucket -> key -> value, written in that bucket (made if
	// missing).
	puts map[string]map[string][]byte
	// added counts the file digests among them, for metaFileSumsAdded.
	added int
}

// putHint queues value v under key in bucket.
func (d *DB) putHint(bucket []byte, key string, v []byte) {
	h := &d.hints
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.puts == nil {
		h.puts = map[string]map[string][]byte{}
	}
	b := h.puts[string(bucket)]
	if b == nil {
		b = map[string][]byte{}
		h.puts[string(bucket)] = b
	}
	if _, again := b[key]; !again {
		h.n++
	}
	b[key] = v
}

// maxQueuedHints bounds the memory of the queue (some 200 bytes a file
// digest): a context of more files than this writes its digests in a
// transaction of their own.
const maxQueuedHints = 1 << 16

// hintsFull reports whether the queue holds maxQueuedHints values or more.
func (d *DB) hintsFull() bool {
	d.hints.mu.Lock()
	defer d.hints.mu.Unlock()
	return d.hints.n >= maxQueuedHints
}

// countHints adds n file digests to those queued, for metaFileSumsAdded.
func (d *DB) countHints(n int) {
	d.hints.mu.Lock()
	defer d.hints.mu.Unlock()
	d.hints.added += n
}

// hint returns the value queued under key in bucket, if any.
func (d *DB) hint(bucket []byte, key string) ([]byte, bool) {
	h := &d.hints
	h.mu.Lock()
	defer h.mu.Unlock()
	v, ok := h.puts[string(bucket)][key]
	return v, ok
}

// withHints calls fn with the values queued in bucket, if any, under the
// queue's lock: fn must not keep the map.
func (d *DB) withHints(bucket []byte, fn func(map[string][]byte)) {
	h := &d.hints
	h.mu.Lock()
	defer h.mu.Unlock()
	if m := h.puts[string(bucket)]; len(m) > 0 {
		fn(m)
	}
}

// takeHints returns what is queued and empties the queue.
func (d *DB) takeHints() (map[string]map[string][]byte, int) {
	h := &d.hints
	h.mu.Lock()
	defer h.mu.Unlock()
	puts, added := h.puts, h.added
	h.puts, h.added, h.n = nil, 0, 0
	return puts, added
}

// requeueHints queues again the hints of a transaction that failed,
// except where a newer value was queued meanwhile.
func (d *DB) requeueHints(puts map[string]map[string][]byte, added int) {
	h := &d.hints
	h.mu.Lock()
	defer h.mu.Unlock()
	for bucket, kv := range puts {
		if h.puts == nil {
			h.puts = map[string]map[string][]byte{}
		}
		cur := h.puts[bucket]
		if cur == nil {
			cur = map[string][]byte{}
			h.puts[bucket] = cur
		}
		for k, v := range kv {
			if _, newer := cur[k]; !newer {
				cur[k] = v
				h.n++
			}
		}
	}
	h.added += added
}

// writeHints writes the queued hints in tx. It is best effort: a put
// that fails is skipped (a hint is only a saving), so that the records
// of the transaction it rides in are never refused for a hint.
func writeHints(tx *bolt.Tx, puts map[string]map[string][]byte, added int) {
	for bucket, kv := range puts {
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
	if added > 0 {
		countAdded(tx, added)
	}
}

// HintsPending reports whether hints wait to be written.
func (d *DB) HintsPending() bool {
	d.hints.mu.Lock()
	defer d.hints.mu.Unlock()
	return len(d.hints.puts) > 0 || d.hints.added > 0
}

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
