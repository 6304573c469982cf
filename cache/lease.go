package cache

import (
	"path/filepath"

	"github.com/builder-dev/builder/cache/coord"
)

// Every open DB keeps a lease (coord.LeaseFile) on what this process uses
// until Close: lookups add what they return, and NewSnapshotID the ids it
// reserves, while they hold the database, so that a prune in another
// process, which reads the leases while it holds the database, spares
// them.

func (d *DB) leaseDir() string { return filepath.Join(d.root, "leases") }

// Leases returns the leases of the other processes that have the state
// directory open, removing those of processes that are gone. Call it
// under Hold for a view that no lookup elsewhere changes meanwhile.
func (d *DB) Leases() ([]Lease, error) {
	held, err := coord.ReadLeases(d.leaseDir(), d.lease.Path())
	out := make([]Lease, 0, len(held))
	for _, h := range held {
		out = append(out, Lease{Snapshots: h.Snapshots, Keys: h.Keys, Blobs: h.Blobs, Since: h.Since})
	}
	return out, err
}

// OthersActive reports whether another process has the state directory
// open now.
func (d *DB) OthersActive() (bool, error) {
	ls, err := d.Leases()
	return len(ls) > 0, err
}
