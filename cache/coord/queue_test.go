package coord

import (
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	bolt "go.etcd.io/bbolt"
)

// Two Queues on one path in one process take turns exactly as two
// processes do: flock(2) locks belong to open files.
func openQueues(t *testing.T, n int) []*Queue {
	t.Helper()
	p := filepath.Join(t.TempDir(), "meta.db")
	var qs []*Queue
	for range n {
		q, err := OpenQueue(p, nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { q.Close() })
		qs = append(qs, q)
	}
	return qs
}

func update(t *testing.T, q *Queue) *bolt.DB {
	t.Helper()
	b, err := q.Acquire()
	if err != nil {
		t.Fatal(err)
	}
	defer q.Release()
	if err := b.Update(func(tx *bolt.Tx) error { _, err := tx.CreateBucketIfNotExists([]byte("b")); return err }); err != nil {
		t.Fatal(err)
	}
	return b
}

// A lone process keeps the database open (and its pages mapped) between
// transactions, where it used to close it after a few milliseconds.
func TestQueueKeepsTheDatabaseOpenAlone(t *testing.T) {
	q := openQueues(t, 1)[0]
	first := update(t, q)
	time.Sleep(20 * Poll)
	if again := update(t, q); again != first {
		t.Error("the database was closed and opened again between two transactions with nobody else waiting")
	}
}

// An idle holder hands the database over when another process asks, and
// takes it back after.
func TestQueueHandsOverWhenAsked(t *testing.T) {
	qs := openQueues(t, 2)
	a, b := qs[0], qs[1]
	update(t, a) // a holds it, idle
	done := make(chan struct{})
	go func() {
		defer close(done)
		update(t, b)
	}()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("a second process did not get the database an idle one kept open")
	}
	back := make(chan struct{})
	go func() {
		defer close(back)
		update(t, a)
	}()
	select {
	case <-back:
	case <-time.After(30 * time.Second):
		t.Fatal("the first process did not get the database back")
	}
}

// A process running transactions back to back for a long time does not
// starve another: the other's transaction completes while the first is
// still going.
func TestQueueBusyHolderLetsOthersIn(t *testing.T) {
	qs := openQueues(t, 2)
	a, b := qs[0], qs[1]
	var stop atomic.Bool
	type outcome struct {
		n       int
		stopped bool
	}
	busy := make(chan outcome)
	running := make(chan struct{})
	go func() {
		n := 0
		for deadline := time.Now().Add(60 * time.Second); !stop.Load() && time.Now().Before(deadline); n++ {
			db, err := a.Acquire()
			if err != nil {
				t.Error(err)
				break
			}
			db.View(func(*bolt.Tx) error { time.Sleep(time.Millisecond); return nil })
			a.Release()
			if n == 10 {
				close(running)
			}
		}
		busy <- outcome{n, stop.Load()}
	}()
	select {
	case <-running:
	case o := <-busy:
		t.Fatalf("the busy process stopped after %d transactions", o.n)
	}
	update(t, b)
	stop.Store(true)
	o := <-busy
	if !o.stopped {
		t.Error("the other process got no transaction in 60 s of the busy one's")
	}
	if o.n == 0 {
		t.Error("the busy process ran no transaction")
	}
}
