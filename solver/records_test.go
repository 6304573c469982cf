package solver

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// gatedCache is a memCache whose Record waits for gate (as the Worker's
// waits for the flush that makes a layer durable) and then fails or not.
type gatedCache struct {
	memCache
	gate    chan error
	waiting atomic.Int32
}

func (c *gatedCache) Record(ctx context.Context, r Result, keys ...digest.Digest) error {
	c.waiting.Add(1)
	if err := <-c.gate; err != nil {
		return err
	}
	return c.memCache.Record(ctx, r, keys...)
}

// TestSolveRecordsInBackground: a chain of steps runs to its end while
// no record is written yet, and Solve returns only once all are.
func TestSolveRecordsInBackground(t *testing.T) {
	f := newFixture()
	a := f.vertex(1, 0)
	b := f.vertex(10, 0, a)
	c := f.vertex(100, 0, b)
	cache := &gatedCache{memCache: memCache{m: map[digest.Digest]Result{}}, gate: make(chan error)}
	done := make(chan error, 1)
	go func() {
		_, err := New(f.op, cache, nil, 1).Solve(t.Context(), c)
		done <- err
	}()
	for deadline := time.Now().Add(10 * time.Second); cache.waiting.Load() < 3; time.Sleep(time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d steps ran with their records held, want all 3 (a step waited for its input's record)", f.runs.Load())
		}
	}
	select {
	case err := <-done:
		t.Fatalf("Solve returned (%v) before the records were written", err)
	case <-time.After(50 * time.Millisecond):
	}
	for range 3 {
		cache.gate <- nil
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if cache.records != 3 {
		t.Errorf("%d records written, want 3", cache.records)
	}
}

// TestSolveFailsOnFailedRecord: a record that fails fails the solve and
// names the step.
func TestSolveFailsOnFailedRecord(t *testing.T) {
	f := newFixture()
	a := f.vertex(1, 0)
	b := f.vertex(10, 0, a)
	cache := &gatedCache{memCache: memCache{m: map[digest.Digest]Result{}}, gate: make(chan error, 2)}
	cache.gate <- errors.New("disk full")
	cache.gate <- nil
	_, err := New(f.op, cache, nil, 1).Solve(t.Context(), b)
	var ve *VertexError
	if !errors.As(err, &ve) || !strings.Contains(err.Error(), "disk full") {
		t.Fatalf("Solve with a failing record = %v, want a VertexError with the cause", err)
	}
}

// lockedGatedCache is a gatedCache shared with other processes: it counts
// the keys locked and notes a key unlocked before its record was written.
type lockedGatedCache struct {
	gatedCache
	locked, early atomic.Int32
}

func (c *lockedGatedCache) LockKey(_ context.Context, key digest.Digest, _ func(string)) (func(), error) {
	c.locked.Add(1)
	return func() {
		if _, ok, _ := c.Lookup(context.Background(), key); !ok {
			c.early.Add(1)
		}
		c.locked.Add(-1)
	}, nil
}

// TestSolveUnlocksAfterRecord: a step's key stays locked until its record
// is written, so that a build elsewhere waiting for it finds the record.
func TestSolveUnlocksAfterRecord(t *testing.T) {
	f := newFixture()
	a := f.vertex(1, 0)
	b := f.vertex(10, 0, a)
	cache := &lockedGatedCache{gatedCache: gatedCache{memCache: memCache{m: map[digest.Digest]Result{}}, gate: make(chan error, 2)}}
	cache.gate <- nil
	cache.gate <- nil
	if _, err := New(f.op, cache, nil, 1).Solve(t.Context(), b); err != nil {
		t.Fatal(err)
	}
	if n := cache.early.Load(); n != 0 {
		t.Errorf("%d keys unlocked before their record was written", n)
	}
	if n := cache.locked.Load(); n != 0 {
		t.Errorf("%d keys left locked", n)
	}
}
