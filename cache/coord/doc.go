// Package coord lets processes share one state directory: they open its
// bbolt database in turn for short bursts (Queue), keep lease files on
// what they use so that a GC elsewhere spares it (LeaseFile, ReadLeases),
// and lock a cache key while they compute it so that others wait for the
// result instead of computing it too (LockKey). Every lock is an flock(2),
// which dies with its process: a killed build blocks nobody.
package coord
