package usage

import (
	"errors"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/builder-dev/builder/cache"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestTouch checks last-use times, the measurement of new snapshots and
// the running total, and that a touch within TouchResolution writes
// nothing.
func TestTouch(t *testing.T) {
	db, err := cache.Open(filepath.Join(t.TempDir(), "meta.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
	created := now.Add(-time.Hour)
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(db.PutSnapshot(cache.Snapshot{ID: "1", Created: created}))
	must(db.PutSnapshot(cache.Snapshot{ID: "2", Parent: "1", Created: created,
		Blobs: map[string]ocispec.Descriptor{"gzip": {Digest: digest.FromString("2"), Size: 7}}}))
	must(db.PutSnapshot(cache.Snapshot{ID: "3", Created: created}))
	key := digest.FromString("k")
	must(db.Record(key, cache.Result{Snapshot: "2", Created: created}))

	measured := 0
	measure := func(id string) (int64, error) { measured++; return 100, nil }
	must(Touch(db, Use{Keys: []digest.Digest{key}, Time: now}, measure))
	if measured != 2 {
		t.Errorf("Touch measured %d snapshots, want 2 (the key's chain)", measured)
	}
	if n, _ := Total(db); n != 207 {
		t.Errorf("Usage() = %d after Touch, want 207", n)
	}
	s, _ := db.Snapshot("1")
	r, _ := db.Lookup(t.Context(), key)
	if !s.LastUsed.Equal(now) || !r.LastUsed.Equal(now) || s.Size != 100 {
		t.Errorf("after Touch: snapshot %+v, result %+v", s, r)
	}
	if s3, _ := db.Snapshot("3"); !s3.LastUsed.IsZero() {
		t.Errorf("Touch touched an unused snapshot: %+v", s3)
	}

	// Within TouchResolution nothing is measured or written.
	must(Touch(db, Use{Keys: []digest.Digest{key}, Time: now.Add(TouchResolution / 2)}, measure))
	if s, _ := db.Snapshot("1"); !s.LastUsed.Equal(now) || measured != 2 {
		t.Errorf("Touch within the resolution rewrote %+v (measured %d)", s, measured)
	}
	// A snapshot's blobs added later (the exporter) are counted at the next touch.
	s2, _ := db.Snapshot("2")
	s2.Blobs["zstd"] = ocispec.Descriptor{Digest: digest.FromString("2z"), Size: 5}
	must(db.PutSnapshot(s2))
	must(Touch(db, Use{Snapshots: []string{"2"}, Time: now.Add(TouchResolution / 2)}, measure))
	if n, _ := Total(db); n != 212 {
		t.Errorf("Usage() = %d after new blobs, want 212", n)
	}
	// ... and only what changed is stored again: the chain's last-use
	// times are fresh, so they stay as they were.
	for _, id := range []string{"1", "2"} {
		if s, _ := db.Snapshot(id); !s.LastUsed.Equal(now) {
			t.Errorf("snapshot %s last used %v after a touch within the resolution, want %v kept", id, s.LastUsed, now)
		}
	}

	must(Delete(db, []digest.Digest{key}, nil, []string{"2"}))
	if n, _ := Total(db); n != 100 {
		t.Errorf("Usage() = %d after deleting 2, want 100", n)
	}
	must(Resync(db, map[string]int64{"1": 40, "3": 60}))
	if n, _ := Total(db); n != 100 {
		t.Errorf("Usage() = %d after Resync, want 100", n)
	}
}

// BenchmarkTouchNoop is the cost a no-op rebuild pays at its end: a Touch
// of recently touched records (one read transaction) and the GC check.
func BenchmarkTouchNoop(b *testing.B) {
	db, err := cache.Open(filepath.Join(b.TempDir(), "meta.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer db.Close()
	parent, created := "", time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
	for i := range 10 {
		id := strconv.Itoa(i + 1)
		db.PutSnapshot(cache.Snapshot{ID: id, Parent: parent, Created: created})
		parent = id
	}
	key := digest.FromString("k")
	db.Record(key, cache.Result{Snapshot: parent, Created: created})
	measure := func(string) (int64, error) { return 1, nil }
	t0 := time.Now()
	Touch(db, Use{Keys: []digest.Digest{key}, Snapshots: []string{parent}, Time: t0}, measure)
	b.ResetTimer()
	for b.Loop() {
		if err := Touch(db, Use{Keys: []digest.Digest{key}, Snapshots: []string{parent}, Time: t0.Add(time.Second)}, measure); err != nil {
			b.Fatal(err)
		}
		if _, err := Total(db); err != nil {
			b.Fatal(err)
		}
	}
}

// TestTouchMeasureError: a snapshot that cannot be measured does not stop
// Touch from writing the last-use times and the other sizes; it stays
// unmeasured (0 in the total), measured again at the next touch.
func TestTouchMeasureError(t *testing.T) {
	db, err := cache.Open(filepath.Join(t.TempDir(), "meta.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	now := time.Date(2026, 1, 10, 12, 0, 0, 0, time.UTC)
	for _, s := range []cache.Snapshot{{ID: "1", Created: now}, {ID: "2", Parent: "1", Created: now}} {
		if err := db.PutSnapshot(s); err != nil {
			t.Fatal(err)
		}
	}
	bad := true
	measure := func(id string) (int64, error) {
		if id == "1" && bad {
			return 0, errors.New("measuring 1: too many open files")
		}
		return 100, nil
	}
	if err := Touch(db, Use{Snapshots: []string{"2"}, Time: now}, measure); err == nil {
		t.Error("Touch hid the measure error")
	}
	s1, _ := db.Snapshot("1")
	s2, _ := db.Snapshot("2")
	if n, _ := Total(db); n != 100 || s1.Measured || !s2.Measured || !s1.LastUsed.Equal(now) || !s2.LastUsed.Equal(now) {
		t.Errorf("after a measure error: total %d, snapshots %+v %+v; want 100, 1 unmeasured, both used now", n, s1, s2)
	}
	bad = false
	if err := Touch(db, Use{Snapshots: []string{"2"}, Time: now}, measure); err != nil {
		t.Fatal(err)
	}
	if n, _ := Total(db); n != 200 {
		t.Errorf("total %d after measuring again, want 200", n)
	}
}
