package cache

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// Two DBs on one path in one process lock each other out exactly as two
// processes do: flock(2) locks belong to open files, not processes.
func openTwo(t *testing.T) (*DB, *DB) {
	t.Helper()
	p := filepath.Join(t.TempDir(), "meta.db")
	a, err := Open(p, nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { a.Close() })
	b, err := Open(p, nil)
	if err != nil {
		t.Fatalf("second Open of a database another handle has used: %v", err)
	}
	t.Cleanup(func() { b.Close() })
	return a, b
}

func TestTwoHandlesWriteInTurn(t *testing.T) {
	a, b := openTwo(t)
	var wg sync.WaitGroup
	for i, d := range []*DB{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := range 50 {
				key := digest.FromString(string(rune('a'+i)) + string(rune(j)))
				if err := d.Record(key, Result{Snapshot: "s"}); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	for _, d := range []*DB{a, b} {
		keys, err := d.Keys()
		if err != nil || len(keys) != 100 {
			t.Errorf("Keys() = %d records, %v; want the 100 both handles wrote", len(keys), err)
		}
	}
}

func TestHoldKeepsOthersOut(t *testing.T) {
	a, b := openTwo(t)
	key := digest.FromString("k")
	var released time.Time
	entered := make(chan struct{})
	done := make(chan error)
	go func() {
		done <- a.Hold(func() error {
			close(entered)
			time.Sleep(100 * time.Millisecond)
			if _, err := a.Lookup(t.Context(), key); !errors.Is(err, ErrNotFound) {
				return errors.New("a record written by another handle appeared inside Hold")
			}
			released = time.Now()
			return nil
		})
	}()
	<-entered
	if err := b.Record(key, Result{Snapshot: "s"}); err != nil {
		t.Fatal(err)
	}
	wrote := time.Now()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if wrote.Before(released) {
		t.Errorf("the other handle wrote at %v, before Hold ended at %v", wrote, released)
	}
}

func TestLeasesOfOtherHandles(t *testing.T) {
	a, b := openTwo(t)
	key := digest.FromString("k")
	if err := a.Record(key, Result{Snapshot: "7"}); err != nil {
		t.Fatal(err)
	}
	id, err := a.NewSnapshotID(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.Lookup(t.Context(), key); err != nil {
		t.Fatal(err)
	}
	ls, err := b.Leases()
	if err != nil || len(ls) != 1 {
		t.Fatalf("Leases() = %v, %v; want the other handle's one", ls, err)
	}
	if !slices.Contains(ls[0].Keys, key) || !slices.Contains(ls[0].Snapshots, "7") || !slices.Contains(ls[0].Snapshots, id) || ls[0].Since.IsZero() {
		t.Errorf("lease = %+v, want key %s, snapshots 7 and %s, and a time", ls[0], key, id)
	}
	if own, _ := a.Leases(); len(own) != 1 || len(own[0].Keys) != 0 {
		t.Errorf("a.Leases() = %v, want only the other handle's, empty one", own)
	}
	// A lease nobody holds is a dead process's: ignored and removed.
	stale := filepath.Join(a.leases.Dir, "1-dead")
	if err := os.WriteFile(stale, []byte("1\nk "+key.String()+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	a.Close()
	if ls, err := b.Leases(); err != nil || len(ls) != 0 {
		t.Errorf("Leases() after the other handle closed = %v, %v; want none", ls, err)
	}
	if _, err := os.Stat(stale); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("a stale lease is left: %v", err)
	}
}

func TestLockKeyWaitsForTheHolder(t *testing.T) {
	a, b := openTwo(t)
	key := digest.FromString("step")
	held, err := a.LockKey(t.Context(), key, nil)
	if err != nil {
		t.Fatal(err)
	}
	var unlocked atomic.Int64
	unlocked.Store(time.Now().Add(time.Hour).UnixNano())
	waited := 0
	got := make(chan error)
	go func() {
		l, err := b.LockKey(t.Context(), key, func(string) { waited++ })
		if err == nil && time.Now().UnixNano() < unlocked.Load() {
			err = errors.New("locked while the other holder had it")
		}
		l.Unlock()
		got <- err
	}()
	time.Sleep(100 * time.Millisecond)
	unlocked.Store(time.Now().UnixNano())
	if err := held.Unlock(); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if waited != 1 {
		t.Errorf("waiting was called %d times, want once", waited)
	}
	if ents, _ := os.ReadDir(filepath.Join(a.root, "locks")); len(ents) != 0 {
		t.Errorf("lock files left: %v", ents)
	}

	// A waiter gives up with its context.
	held, err = a.LockKey(t.Context(), key, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer held.Unlock()
	ctx, cancel := context.WithTimeout(t.Context(), 50*time.Millisecond)
	defer cancel()
	if _, err := b.LockKey(ctx, key, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("LockKey with an ending context = %v, want the deadline", err)
	}
}
