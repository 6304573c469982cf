// Package statedir opens, for a test, the three stores of a state
// directory (metadata database, content store, snapshotter) laid out as
// build.State lays them out, closed when the test ends.
package statedir

import (
	"path/filepath"
	"testing"

	"github.com/builder-dev/builder/cache"
	"github.com/builder-dev/builder/cache/content"
	"github.com/builder-dev/builder/snapshot"
)

// Open opens the stores in dir; opts are the snapshotter's beyond its
// temporary directory.
func Open(t testing.TB, dir string, opts ...snapshot.Option) (*cache.DB, *content.Store, snapshot.Snapshotter) {
	t.Helper()
	db, err := cache.Open(filepath.Join(dir, "meta.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	store, err := content.NewStore(filepath.Join(dir, "content"))
	if err != nil {
		t.Fatal(err)
	}
	opts = append([]snapshot.Option{snapshot.WithTempDir(filepath.Join(dir, "tmp"))}, opts...)
	snaps, err := snapshot.NewSnapshotter(filepath.Join(dir, "snapshots"), opts...)
	if err != nil {
		t.Fatal(err)
	}
	return db, store, snaps
}
