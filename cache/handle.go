package cache

import bolt "go.etcd.io/bbolt"

// The database is opened in turn with other processes (coord.Queue); these
// are the ways to use it.

func (d *DB) view(fn func(*bolt.Tx) error) error {
	b, err := d.q.Acquire()
	if err != nil {
		return err
	}
	defer d.q.Release()
	return b.View(fn)
}

func (d *DB) update(fn func(*bolt.Tx) error) error {
	b, err := d.q.Acquire()
	if err != nil {
		return err
	}
	defer d.q.Release()
	d.writes.Add(1)
	// The queued hints go first, so that fn's own writes win over them
	// (a prune of file digests deletes what it decided to). Lookups still
	// see them until the transaction ends.
	batch := d.hints.Take()
	var fnErr error
	err = b.Update(func(tx *bolt.Tx) error {
		writeHints(tx, batch)
		if fnErr = fn(tx); fnErr == nil && commitFault != nil && !batch.Empty() {
			return commitFault()
		}
		return fnErr
	})
	if err == nil || fnErr != nil || batch.Empty() {
		// fn's own error is not the hints': they wait for the next write.
		d.hints.Done(batch, err == nil, true)
		return err
	}
	// The commit failed with the hints in it: they may be what does not
	// fit (ENOSPC growing the file), and each later transaction would
	// carry them again. They only save work: drop them and write fn's
	// changes alone, so that a durable write (a prune freeing space) that
	// fits still succeeds. fn runs again, as in bolt.DB.Batch.
	d.hints.Done(batch, false, false)
	d.writes.Add(1)
	return b.Update(fn)
}

// commitFault, set by tests, fails the commit of a transaction carrying
// hints once fn succeeded, as a full disk would.
var commitFault func() error

// Writes returns how many write transactions this DB has begun. Each
// costs bbolt two fdatasyncs, the main metadata cost of a step.
func (d *DB) Writes() uint64 { return d.writes.Load() }

// Holds returns how many times this DB was held (Hold): each may wait for
// other processes and makes them wait.
func (d *DB) Holds() uint64 { return d.holds.Load() }

// Hold keeps the database to this process while fn runs: transactions in
// fn see no other process's changes in between. A prune decides and
// deletes under it, so that a build elsewhere either finds a record before
// (and leases it) or not at all. Keep fn short; other processes wait.
func (d *DB) Hold(fn func() error) error {
	d.holds.Add(1)
	if _, err := d.q.Acquire(); err != nil {
		return err
	}
	defer d.q.Release()
	return fn()
}

// View runs fn in a read transaction, for cache's subpackages (such as
// cache/usage) that keep records of their own in the database.
func (d *DB) View(fn func(*bolt.Tx) error) error { return d.view(fn) }

// Update runs fn in a write transaction (two fdatasyncs), for cache's
// subpackages.
func (d *DB) Update(fn func(*bolt.Tx) error) error { return d.update(fn) }
