package cache

import (
	"context"

	"github.com/builder-dev/builder/cache/coord"
)

// Leases (coord.LeaseFile) say what a build uses, so that a prune in this
// process or another spares it: lookups add what they return, and
// NewSnapshotID the ids it reserves, while they hold the database, to the
// lease of the build whose context they run in (WithLease), else to this
// DB's own lease. A prune reads the leases while it holds the database.
// Each build has a lease of its own, released when it ends, so that a
// long-lived process (builder serve) keeps nothing a finished build used.

type leaseKey struct{}

// NewLease makes a lease for one build; Close it when the build ends.
func (d *DB) NewLease() (*coord.LeaseFile, error) { return d.leases.New() }

// WithLease returns ctx with l as the lease that the lookups made under
// it add to.
func WithLease(ctx context.Context, l *coord.LeaseFile) context.Context {
	return context.WithValue(ctx, leaseKey{}, l)
}

// leaseFor returns the lease of ctx's build, or this DB's own lease, made
// again if ReleaseOwnLease dropped it.
func (d *DB) leaseFor(ctx context.Context) (*coord.LeaseFile, error) {
	if l, ok := ctx.Value(leaseKey{}).(*coord.LeaseFile); ok && l != nil {
		return l, nil
	}
	return d.leases.Own()
}

// ReleaseOwnLease drops the lease that Open made for this DB as a whole,
// for a process that runs many builds over a long life, each with a lease
// of its own: else everything made since the process started would be
// spared by every prune. A lookup outside any build makes it again.
func (d *DB) ReleaseOwnLease() error { return d.leases.ReleaseOwn() }

// Leases returns the live leases of the builds of this process and of
// the other processes that have the state directory open (all but this
// DB's own lease), removing those of processes that are gone. Call it
// under Hold for a view that no lookup elsewhere changes meanwhile.
func (d *DB) Leases() ([]coord.Held, error) { return d.leases.Read() }

// OthersActive reports whether a build or another process has the state
// directory open now.
func (d *DB) OthersActive() (bool, error) {
	ls, err := d.Leases()
	return len(ls) > 0, err
}
