package cache

import (
	"context"
	"strconv"
	"sync"

	"github.com/builder-dev/builder/cache/coord"
	bolt "go.etcd.io/bbolt"
)

// idsPerWrite is how many snapshot ids one write transaction reserves.
// Each write transaction costs bbolt's two fsyncs; a step that misses the
// cache writes its snapshot and results in one (RecordStep), and its id
// in this one only every idsPerWrite steps.
// The ids a process leaves unused are skipped, which lengthens later ids
// only a little.
const idsPerWrite = 16

// idBlock holds the snapshot ids reserved and not yet handed out.
type idBlock struct {
	mu         sync.Mutex
	next, stop uint64
}

// NewSnapshotID reserves a short unique snapshot id, in the lease of
// ctx's build. Short ids keep overlay's lowerdir option, limited to one
// page, able to hold many layers.
func (d *DB) NewSnapshotID(ctx context.Context) (string, error) {
	lease, err := d.leaseFor(ctx)
	if err != nil {
		return "", err
	}
	n, err := d.nextID()
	if err != nil {
		return "", err
	}
	id := strconv.FormatUint(n, 36)
	// Until it is recorded and used, nothing but this lease says the
	// snapshot is wanted.
	return id, d.Hold(func() error { return lease.Add(coord.KindSnapshot, id) })
}

// nextID hands out a reserved id, reserving idsPerWrite more in the
// snapshots bucket's sequence when none is left.
func (d *DB) nextID() (uint64, error) {
	b := &d.ids
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.next == b.stop {
		var first uint64
		err := d.update(func(tx *bolt.Tx) error {
			seq := tx.Bucket(bucketSnapshots)
			first = seq.Sequence() + 1
			return seq.SetSequence(first + idsPerWrite - 1)
		})
		if err != nil {
			return 0, err
		}
		b.next, b.stop = first, first+idsPerWrite
	}
	n := b.next
	b.next++
	return n, nil
}
