package cache

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/builder-dev/builder/cache/internal/hintq"
	bolt "go.etcd.io/bbolt"
)

// TestHintsRideInNextWrite: file digests and step records cost no write
// transaction of their own; this DB's lookups see them at once, and the
// next write transaction (a durable record) writes them too.
func TestHintsRideInNextWrite(t *testing.T) {
	path := filepath.Join(t.TempDir(), "meta.db")
	db, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	fs := db.FileSums()
	paths, keys := writeFiles(t, t.TempDir(), "a", "b")
	w := db.Writes()
	fs.Store(paths, keys, [][32]byte{{1}, {2}}, nil)
	db.PutSteps(map[string][]byte{"step": []byte(`{"key":"k1",}`)})
	if db.Writes() != w || !db.HintsPending() {
		t.Fatalf("Store + PutSteps: %d writes, pending %v; want none, pending", db.Writes()-w, db.HintsPending())
	}
	if sums, ok := fs.Lookup([][]byte{[]byte(paths[0]), []byte(paths[1])}, keys); !ok[0] || !ok[1] || sums[1][0] != 2 {
		t.Errorf("Lookup of queued digests = %v %v, want both found", sums, ok)
	}
	if v, ok := db.Step("step"); !ok || string(v) != `{"key":"k1",}` || !db.StepHasPrefix("step", []byte(`{"key":"k1"`)) {
		t.Errorf("Step of a queued record = %q %v, want it", v, ok)
	}
	if err := db.PutSnapshot(Snapshot{ID: "1", Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if db.Writes() != w+1 || db.HintsPending() {
		t.Errorf("PutSnapshot: %d writes, pending %v; want 1, none pending", db.Writes()-w, db.HintsPending())
	}
	if err := db.FlushHints(); err != nil || db.Writes() != w+1 {
		t.Errorf("FlushHints with nothing queued: %v, %d writes; want none", err, db.Writes()-w-1)
	}
	db.Close()
	db, err = Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, ok := db.FileSums().Lookup([][]byte{[]byte(paths[0])}, keys); !ok[0] {
		t.Error("a digest written with PutSnapshot's transaction is missing after reopening")
	}
	if _, ok := db.Step("step"); !ok {
		t.Error("a step record written with PutSnapshot's transaction is missing after reopening")
	}
	if _, added, err := db.GCCounts(); err != nil || added != 2 {
		t.Errorf("digests counted as added = %d, %v; want 2", added, err)
	}
}

// TestHintsFailedWriteRequeues: a transaction that fails writes none of
// the hints it carried, and keeps them queued for the next; a direct write
// in a transaction wins over an older queued hint.
func TestHintsFailedWriteRequeues(t *testing.T) {
	db, fs := openSums(t)
	paths, keys := writeFiles(t, t.TempDir(), "a")
	fs.Store(paths, keys, [][32]byte{{1}}, nil)
	boom := errors.New("boom")
	if err := db.update(func(*bolt.Tx) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("update = %v, want boom", err)
	}
	if !db.HintsPending() {
		t.Fatal("the hints of a failed transaction were dropped")
	}
	db.PutSteps(map[string][]byte{"s": []byte("queued")})
	err := db.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketSteps)
		if err != nil {
			return err
		}
		return b.Put([]byte("s"), []byte("direct"))
	})
	if err != nil {
		t.Fatal(err)
	}
	if v, _ := db.Step("s"); string(v) != "direct" {
		t.Errorf("step record = %q, want the direct write's", v)
	}
	files, _, err := fs.Count()
	if err != nil || files != 1 {
		t.Errorf("Count = %d, %v; want the requeued digest written", files, err)
	}
}

// TestHintsLostInCrash: a process that dies with hints queued loses only
// them; every record written before (and the hints that rode with it) is
// there, and the database opens and takes writes.
func TestHintsLostInCrash(t *testing.T) {
	if os.Getenv("BUILDER_HINTS_CRASH") != "" {
		db, err := Open(os.Getenv("BUILDER_HINTS_CRASH"), nil)
		if err != nil {
			os.Exit(2)
		}
		db.PutSteps(map[string][]byte{"rode": []byte("1")})
		if db.PutSnapshot(Snapshot{ID: "durable", Created: time.Now()}) != nil {
			os.Exit(3)
		}
		db.PutSteps(map[string][]byte{"queued": []byte("1")})
		os.Exit(0) // no Close: killed with a hint queued
	}
	path := filepath.Join(t.TempDir(), "meta.db")
	cmd := exec.Command(os.Args[0], "-test.run=^TestHintsLostInCrash$")
	cmd.Env = append(os.Environ(), "BUILDER_HINTS_CRASH="+path)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	db, err := Open(path, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Snapshot("durable"); err != nil {
		t.Errorf("the durable record: %v", err)
	}
	if _, ok := db.Step("rode"); !ok {
		t.Error("the hint written with the durable record is missing")
	}
	if _, ok := db.Step("queued"); ok {
		t.Error("a hint queued when the process died was written")
	}
	if err := db.PutSnapshot(Snapshot{ID: "after", Created: time.Now()}); err != nil {
		t.Errorf("writing after the crash: %v", err)
	}
}

// TestHintsBounded: a context of as many files as the queue's bound writes
// its digests at once rather than holding them all in memory.
func TestHintsBounded(t *testing.T) {
	db, fs := openSums(t)
	n := hintq.Max
	paths, keys, sums := make([]string, n), make([]FileKey, n), make([][32]byte, n)
	for i := range paths {
		paths[i] = "/ctx/f" + strconv.Itoa(i)
	}
	w := db.Writes()
	fs.Store(paths[:n/2], keys[:n/2], sums[:n/2], nil)
	if db.Writes() != w {
		t.Fatalf("Store of %d digests wrote %d transactions, want none", n/2, db.Writes()-w)
	}
	fs.Store(paths[n/2:], keys[n/2:], sums[n/2:], nil)
	if db.Writes() != w+1 || db.HintsPending() {
		t.Errorf("Store past %d queued digests: %d writes, pending %v; want 1, none", hintq.Max, db.Writes()-w, db.HintsPending())
	}
}

// TestHintsConcurrent: digests stored while other goroutines write
// records all end up written, each once queued (run with -race).
func TestHintsConcurrent(t *testing.T) {
	db, fs := openSums(t)
	var wg sync.WaitGroup
	for g := range 4 {
		wg.Add(2)
		go func() {
			defer wg.Done()
			for i := range 50 {
				fs.Store([]string{"/c/" + strconv.Itoa(g) + "/" + strconv.Itoa(i)}, []FileKey{{Size: 1}}, [][32]byte{{byte(i)}}, nil)
			}
		}()
		go func() {
			defer wg.Done()
			for i := range 5 {
				if err := db.PutSnapshot(Snapshot{ID: strconv.Itoa(g*10 + i), Created: time.Now()}); err != nil {
					t.Error(err)
				}
			}
		}()
	}
	wg.Wait()
	if files, _, err := fs.Count(); err != nil || files != 200 {
		t.Errorf("Count = %d, %v; want 200", files, err)
	}
}

// TestHintsCommitFailure: a commit that fails with hints in it (a full
// disk) is tried again without them, so the durable write and the later
// ones succeed and the hints are dropped; hints that rode in a
// transaction failing for its own reason wait for the next one; and the
// hints stay visible to lookups while their transaction runs.
func TestHintsCommitFailure(t *testing.T) {
	db, fs := openSums(t)
	db.PutSteps(map[string][]byte{"step": []byte("r")})
	paths, keys := writeFiles(t, t.TempDir(), "a")
	fs.Store(paths, keys, [][32]byte{{1}}, nil)
	if err := db.update(func(*bolt.Tx) error {
		if _, ok := db.Step("step"); !ok {
			t.Error("a step record is not found while its transaction runs")
		}
		if _, ok := fs.Lookup([][]byte{[]byte(paths[0])}, keys); !ok[0] {
			t.Error("a file digest is not found while its transaction runs")
		}
		return errors.New("refused")
	}); err == nil {
		t.Fatal("the failing transaction succeeded")
	}
	if _, ok := db.Step("step"); !ok || !db.HintsPending() {
		t.Fatal("the hints of a transaction failing for its own reason are lost")
	}
	commitFault = func() error { return errors.New("no space left on device") }
	defer func() { commitFault = nil }()
	if err := db.PutSnapshot(Snapshot{ID: "1", Created: time.Now()}); err != nil {
		t.Fatalf("a durable write failed for the hints it carried: %v", err)
	}
	if _, ok := db.Step("step"); ok || db.HintsPending() {
		t.Error("the hints of the failed commit are kept")
	}
	db.PutSteps(map[string][]byte{"later": []byte("r")})
	if err := db.PutSnapshot(Snapshot{ID: "2", Created: time.Now()}); err != nil {
		t.Errorf("a later durable write: %v", err)
	}
	if _, err := db.Snapshot("1"); err != nil {
		t.Errorf("the durable record is missing: %v", err)
	}
}
