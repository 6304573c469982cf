// Package gcpace sets how much memory a builder process lets its garbage
// grow to before the Go collector runs.
//
// A build's live heap is small (layers stream through fixed buffers) while
// it allocates garbage at the rate it reads tar headers and paths: Go's
// default (collect when the heap doubles) costs a no-op rebuild its time,
// and collecting at five times the live heap (GOGC=400) let a cold build
// whose live heap was 10-13 MB reach a 70 MB heap (95 MB peak RSS for the
// pull of a 500 MB base, where BuildKit's client and daemon took 123 MB).
// So: GOGC=400 under a soft memory limit of Floor, and above the floor
// the limit follows the live heap at twice its size (Go's default pacing),
// so a build or `builder serve` whose live heap outgrows the floor is not
// collected back to back.
package gcpace

import (
	"os"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
)

const (
	// Percent is GOGC's value while the heap is below the limit.
	Percent = 400
	// Floor is the lowest soft memory limit, in bytes of memory the Go
	// runtime holds (heap, stacks, its metadata; not the binary's mapped
	// text, about 19 MB more of resident memory).
	Floor = 24 << 20
)

// Init applies the settings, unless GOGC or GOMEMLIMIT is set: then the
// runtime's own handling of them stands, nothing of this.
func Init() {
	if os.Getenv("GOGC") != "" || os.Getenv("GOMEMLIMIT") != "" {
		return
	}
	debug.SetGCPercent(Percent)
	debug.SetMemoryLimit(Floor)
	arm()
}

// sentinel is allocated and dropped to learn of the end of each
// collection: its cleanup runs after the cycle that found it unreachable.
// It holds a pointer so that it is not a tiny allocation (the cleanup of
// one of those may never run).
type sentinel struct{ _ *byte }

func arm() {
	runtime.AddCleanup(&sentinel{}, func(struct{}) {
		debug.SetMemoryLimit(Next(debug.SetMemoryLimit(-1), sample()))
		arm()
	}, struct{}{})
}

// Usage is what the limit is computed from, read after a collection.
type Usage struct {
	Live uint64 // bytes of heap objects the last collection marked live
	// NonHeap is bytes of stacks, runtime metadata and the like, and the
	// heap's spans' room not holding objects: the runtime counts that
	// against the limit as it does the rest, so a limit without it would
	// leave the heap less than the live heap twice over.
	NonHeap uint64
}

// Limit is the soft memory limit for usage: room for the live heap twice
// over beside the rest, and never below Floor.
func Limit(u Usage) int64 {
	return max(Floor, int64(u.NonHeap+2*u.Live))
}

// Next is the limit after a collection, from the limit before it, prev:
// Limit(u), but at most halving prev. After a sharp fall of the live heap
// the memory mapped falls only as the runtime returns free pages; a limit
// far below it would have the collector run back to back until then
// (seconds at half the CPU, with the runtime's GC CPU limiter).
func Next(prev int64, u Usage) int64 {
	return max(Limit(u), prev/2)
}

var names = []string{
	"/gc/heap/live:bytes",
	"/memory/classes/total:bytes",
	"/memory/classes/heap/free:bytes",
	"/memory/classes/heap/objects:bytes",
	"/memory/classes/heap/released:bytes",
}

func sample() Usage {
	s := make([]metrics.Sample, len(names))
	for i, n := range names {
		s[i].Name = n
	}
	metrics.Read(s)
	v := func(i int) uint64 { return s[i].Value.Uint64() }
	// Free pages are not counted: they can be returned to the system,
	// and a limit over them would grow with every collection's garbage
	// up to GOGC's own goal, so the Floor would hold the heap no more.
	heap := v(2) + v(3) + v(4)
	u := Usage{Live: v(0)}
	if total := v(1); total > heap {
		u.NonHeap = total - heap
	}
	return u
}
