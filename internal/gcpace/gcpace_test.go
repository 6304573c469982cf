package gcpace

import (
	"math"
	"runtime"
	"runtime/debug"
	"testing"
	"time"
)

func TestLimit(t *testing.T) {
	for _, c := range []struct {
		u    Usage
		want int64
	}{
		{Usage{}, Floor},
		{Usage{Live: 8 << 20, NonHeap: 4 << 20}, Floor},
		{Usage{Live: 100 << 20, NonHeap: 6 << 20}, 206 << 20},
	} {
		if got := Limit(c.u); got != c.want {
			t.Errorf("Limit(%+v) = %d, want %d", c.u, got, c.want)
		}
	}
}

// TestNext checks that the limit rises with the live heap at once, and
// after a sharp fall comes down by halves, to Limit.
func TestNext(t *testing.T) {
	big := Usage{Live: 500 << 20, NonHeap: 24 << 20}
	if got := Next(Floor, big); got != Limit(big) {
		t.Errorf("Next(Floor, %+v) = %d, want %d at once", big, got, Limit(big))
	}
	// Limit(big) is 1 GiB; Limit(small) the floor.
	small := Usage{Live: 4 << 20, NonHeap: 4 << 20}
	want := []int64{512 << 20, 256 << 20, 128 << 20, 64 << 20, 32 << 20, Floor, Floor}
	limit := Limit(big)
	for i, w := range want {
		limit = Next(limit, small)
		if limit != w {
			t.Fatalf("cycle %d after the fall: limit %d MiB, want %d MiB", i+1, limit>>20, w>>20)
		}
	}
}

// currentLimit reads the soft memory limit without changing it.
func currentLimit() int64 { return debug.SetMemoryLimit(-1) }

// waitLimit collects until the limit satisfies ok (the limit is set after
// a collection, by a cleanup that runs a little later), or fails.
func waitLimit(t *testing.T, what string, ok func(int64) bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); {
		runtime.GC()
		if ok(currentLimit()) {
			return
		}
		time.Sleep(10 * time.Millisecond)
	}
	t.Fatalf("the memory limit is %d MiB, not %s", currentLimit()>>20, what)
}

// One test, in this order: once Init has armed the hook it stays armed
// for the rest of the process.
func TestInit(t *testing.T) {
	defer debug.SetGCPercent(debug.SetGCPercent(100))
	defer debug.SetMemoryLimit(math.MaxInt64)

	// The user's GOGC (or GOMEMLIMIT) leaves the runtime alone.
	t.Setenv("GOGC", "100")
	Init()
	if l := currentLimit(); l != math.MaxInt64 {
		t.Fatalf("with GOGC set, Init set a memory limit of %d", l)
	}
	if p := debug.SetGCPercent(100); p != 100 {
		t.Fatalf("with GOGC=100 set, Init set GOGC to %d", p)
	}

	t.Setenv("GOGC", "")
	t.Setenv("GOMEMLIMIT", "")
	Init()
	if p := debug.SetGCPercent(Percent); p != Percent {
		t.Errorf("GOGC is %d, want %d", p, Percent)
	}
	waitLimit(t, "the floor with a small heap", func(l int64) bool { return l == Floor })

	// A live heap above the floor raises the limit: else the collector
	// would run back to back, each cycle finding the heap still over it.
	live := make([][]byte, 64)
	for i := range live {
		live[i] = make([]byte, 1<<20)
		live[i][0] = 1
	}
	waitLimit(t, "twice a 64 MiB live heap", func(l int64) bool { return l >= 128<<20 })
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	for range 256 {
		garbage := make([]byte, 1<<20)
		garbage[0] = 1
	}
	runtime.ReadMemStats(&after)
	// The heap may grow by the live heap (64 MiB) before a collection:
	// 256 MiB of garbage takes about four; a limit stuck at the floor
	// took one per MiB.
	if n := after.NumGC - before.NumGC; n > 16 {
		t.Errorf("%d collections for 256 MiB of garbage beside a 64 MiB live heap", n)
	}
	runtime.KeepAlive(live)

	// Freed, the limit comes back down.
	live = nil
	waitLimit(t, "back at the floor", func(l int64) bool { return l == Floor })
}
