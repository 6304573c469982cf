package server

import (
	"context"
	"sync"
)

// queue admits at most limit builds at once, first come first served,
// telling each waiter its place whenever it changes.
type queue struct {
	mu      sync.Mutex
	limit   int
	running int
	waiting []*waiter
}

type waiter struct {
	ready chan struct{}
	// pos holds the waiter's latest place, for its own goroutine to report:
	// the queue never calls out while holding its lock.
	pos chan int
}

func newQueue(limit int) *queue { return &queue{limit: limit} }

// wait returns when the build may run; release must then be called once.
// notify gets the 1-based place in the queue while the build waits.
func (q *queue) wait(ctx context.Context, notify func(pos int)) (release func(), err error) {
	q.mu.Lock()
	if q.limit <= 0 || (q.running < q.limit && len(q.waiting) == 0) {
		q.running++
		q.mu.Unlock()
		return q.release, nil
	}
	w := &waiter{ready: make(chan struct{}), pos: make(chan int, 1)}
	q.waiting = append(q.waiting, w)
	w.pos <- len(q.waiting)
	q.mu.Unlock()
	for {
		select {
		case <-w.ready:
			return q.release, nil
		case p := <-w.pos:
			notify(p)
		case <-ctx.Done():
			q.cancel(w)
			return nil, ctx.Err()
		}
	}
}

// cancel takes a cancelled waiter out of the queue.
func (q *queue) cancel(w *waiter) {
	q.mu.Lock()
	defer q.mu.Unlock()
	select {
	case <-w.ready:
		// Admitted while cancelled: give the slot on.
		q.releaseLocked()
	default:
		q.remove(w)
	}
}

// queued returns the number of waiting builds.
func (q *queue) queued() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.waiting)
}

func (q *queue) release() {
	q.mu.Lock()
	defer q.mu.Unlock()
	q.releaseLocked()
}

func (q *queue) releaseLocked() {
	q.running--
	if len(q.waiting) == 0 {
		return
	}
	w := q.waiting[0]
	q.waiting = q.waiting[1:]
	q.running++
	close(w.ready)
	q.renumber()
}

func (q *queue) remove(w *waiter) {
	for i, x := range q.waiting {
		if x == w {
			q.waiting = append(q.waiting[:i], q.waiting[i+1:]...)
			break
		}
	}
	q.renumber()
}

// renumber gives the waiters their new places; called with q.mu held.
func (q *queue) renumber() {
	for i, w := range q.waiting {
		select {
		case <-w.pos:
		default:
		}
		w.pos <- i + 1
	}
}
