package solver

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
)

// lockingCache is a memCache shared like a state dir of several
// processes: each key has a lock, as cache.DB.LockKey gives.
type lockingCache struct {
	memCache
	locksMu sync.Mutex
	locks   map[digest.Digest]*sync.Mutex
	waits   int
}

func (c *lockingCache) LockKey(ctx context.Context, k digest.Digest, waiting func(string)) (func(), error) {
	c.locksMu.Lock()
	l := c.locks[k]
	if l == nil {
		l = &sync.Mutex{}
		c.locks[k] = l
	}
	c.locksMu.Unlock()
	if !l.TryLock() {
		c.locksMu.Lock()
		c.waits++
		c.locksMu.Unlock()
		waiting("pid 1")
		l.Lock()
	}
	return l.Unlock, nil
}

// Two solvers (two builds) over one shared cache: a step both need runs
// once, the other waits for it and takes its result as cached.
func TestSolveWaitsForAStepLockedElsewhere(t *testing.T) {
	f := newFixture()
	base := f.vertex(1, 0)
	step := f.vertex(10, 200*time.Millisecond, base)
	cache := &lockingCache{memCache: memCache{m: map[digest.Digest]Result{}}, locks: map[digest.Digest]*sync.Mutex{}}
	var wg sync.WaitGroup
	results := make([]Result, 2)
	for i := range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := New(f.op, cache, nil, 2).Solve(t.Context(), step)
			if err != nil {
				t.Error(err)
			}
			results[i] = r
		}()
	}
	wg.Wait()
	if got := f.runs.Load(); got != 2 {
		t.Errorf("ops ran %d times, want 2 (base and step once each)", got)
	}
	if results[0] != results[1] || results[0].Snapshot != "11" {
		t.Errorf("results %v, want 11 twice", results)
	}
	if cache.waits == 0 {
		t.Errorf("neither solver waited for the other's step")
	}
}
