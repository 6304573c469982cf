// Package hintq is the memory queue of cache's hints (records that only
// save work later; see cache/hints.go): values by bucket and key, bounded,
// handed to write transactions in batches that stay readable until their
// transaction ends.
package hintq

import "sync"

// Max bounds the values queued (some 200 bytes a file digest): past it a
// new value is dropped, so that the queue cannot grow while writes keep
// failing.
const Max = 1 << 16

// Queue is safe for concurrent use.
type Queue struct {
	mu sync.Mutex
	// n counts the queued values, for Max.
	n int
	// puts is bucket -> key -> value.
	puts map[string]map[string][]byte
	// added counts the file digests among them (cache's metaFileSumsAdded).
	added int
	// taken are the batches in write transactions not ended yet: lookups
	// still see them.
	taken []*Batch
}

// Batch is what one write transaction carries.
type Batch struct {
	Puts  map[string]map[string][]byte
	Added int
}

// Empty reports whether b holds nothing to write.
func (b *Batch) Empty() bool { return len(b.Puts) == 0 && b.Added == 0 }

// Put queues v under key in bucket; it reports false, dropping v, when
// the queue is full and key is not queued already.
func (q *Queue) Put(bucket, key string, v []byte) bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.put(bucket, key, v, true)
}

func (q *Queue) put(bucket, key string, v []byte, replace bool) bool {
	if q.puts == nil {
		q.puts = map[string]map[string][]byte{}
	}
	b := q.puts[bucket]
	if _, queued := b[key]; queued {
		if replace {
			b[key] = v
		}
		return true
	}
	if q.n >= Max {
		return false
	}
	if b == nil {
		b = map[string][]byte{}
		q.puts[bucket] = b
	}
	b[key] = v
	q.n++
	return true
}

// Full reports whether the queue holds Max values.
func (q *Queue) Full() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return q.n >= Max
}

// Count adds n to the file digests queued.
func (q *Queue) Count(n int) {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.added += n
}

// Pending reports whether anything waits to be written.
func (q *Queue) Pending() bool {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.puts) > 0 || q.added > 0
}

// Get returns the value queued or in a transaction under key in bucket.
func (q *Queue) Get(bucket, key string) ([]byte, bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if v, ok := q.puts[bucket][key]; ok {
		return v, true
	}
	for i := len(q.taken) - 1; i >= 0; i-- {
		if v, ok := q.taken[i].Puts[bucket][key]; ok {
			return v, true
		}
	}
	return nil, false
}

// Each calls fn with the values of bucket, the queued ones first, then
// those of each batch in a transaction (newest first), under the queue's
// lock: fn must not keep the maps.
func (q *Queue) Each(bucket string, fn func(map[string][]byte)) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if m := q.puts[bucket]; len(m) > 0 {
		fn(m)
	}
	for i := len(q.taken) - 1; i >= 0; i-- {
		if m := q.taken[i].Puts[bucket]; len(m) > 0 {
			fn(m)
		}
	}
}

// Take empties the queue into a batch for a write transaction, which
// stays readable (Get, Each) until Done.
func (q *Queue) Take() *Batch {
	q.mu.Lock()
	defer q.mu.Unlock()
	b := &Batch{Puts: q.puts, Added: q.added}
	q.puts, q.added, q.n = nil, 0, 0
	q.taken = append(q.taken, b)
	return b
}

// Done ends b's transaction: written, or not and to be queued again (as
// far as the queue has room and no newer value was queued), or dropped.
func (q *Queue) Done(b *Batch, written, requeue bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	for i, t := range q.taken {
		if t == b {
			q.taken = append(q.taken[:i], q.taken[i+1:]...)
			break
		}
	}
	if written || !requeue {
		return
	}
	for bucket, kv := range b.Puts {
		for k, v := range kv {
			q.put(bucket, k, v, false)
		}
	}
	q.added += b.Added
}
