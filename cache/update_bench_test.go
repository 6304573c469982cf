package cache

import (
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// BenchmarkStepRecords is what a build step that misses the cache writes:
// a snapshot id, the snapshot's record and the key's result, one write
// transaction each.
func BenchmarkStepRecords(b *testing.B) {
	db, err := Open(filepath.Join(b.TempDir(), "meta.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	i := 0
	for b.Loop() {
		i++
		id, err := db.NewSnapshotID(b.Context())
		if err != nil {
			b.Fatal(err)
		}
		if err := db.PutSnapshot(Snapshot{ID: id, Created: time.Now()}); err != nil {
			b.Fatal(err)
		}
		if err := db.Record(digest.FromString(strconv.Itoa(i)), Result{Snapshot: id, Created: time.Now()}); err != nil {
			b.Fatal(err)
		}
	}
}
