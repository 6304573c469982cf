package cache

import (
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// BenchmarkStepRecords is what a build step that misses the cache writes:
// a snapshot id (one write in idsPerWrite), the snapshot's record and the
// results of its key and content key, as separate write transactions
// (before RecordStep) and as one.
func BenchmarkStepRecords(b *testing.B) {
	for _, together := range []bool{false, true} {
		b.Run("together="+strconv.FormatBool(together), func(b *testing.B) {
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
				s := Snapshot{ID: id, Created: time.Now()}
				r := Result{Snapshot: id, Created: time.Now()}
				keys := []digest.Digest{digest.FromString(strconv.Itoa(i)), digest.FromString("c" + strconv.Itoa(i))}
				if together {
					err = db.RecordStep(&s, r, keys...)
				} else {
					err = db.PutSnapshot(s)
					for _, k := range keys {
						if err == nil {
							err = db.Record(k, r)
						}
					}
				}
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
