package hintq

import (
	"strconv"
	"testing"
)

// TestBound: past Max a new value is dropped (a queued key is still
// replaced), and a failed batch queued again fills only the room left,
// never over a newer value.
func TestBound(t *testing.T) {
	var q Queue
	for i := range Max {
		if !q.Put("b", strconv.Itoa(i), []byte{1}) {
			t.Fatalf("Put %d refused below the bound", i)
		}
	}
	if q.Put("b", "new", []byte{1}) || q.Put("other", "x", nil) {
		t.Error("Put past the bound queued a new value")
	}
	if !q.Put("b", "0", []byte{2}) {
		t.Error("Put refused a new value for a queued key")
	}
	batch := q.Take()
	if q.Full() || q.Pending() {
		t.Fatal("Take left values queued")
	}
	q.Put("b", "0", []byte{3})
	q.Done(batch, false, true)
	if v, _ := q.Get("b", "0"); v[0] != 3 {
		t.Errorf("requeue replaced a newer value: %v", v)
	}
	if !q.Full() || q.n != Max {
		t.Errorf("after requeue: %d queued, want the bound %d", q.n, Max)
	}
}

// TestTakenReadable: a batch in a write transaction is still found by Get
// and Each until Done; dropped, it is gone.
func TestTakenReadable(t *testing.T) {
	var q Queue
	q.Put("b", "k", []byte("v"))
	q.Count(1)
	batch := q.Take()
	if v, ok := q.Get("b", "k"); !ok || string(v) != "v" {
		t.Errorf("Get during the transaction = %q %v", v, ok)
	}
	n := 0
	q.Each("b", func(m map[string][]byte) { n += len(m) })
	if n != 1 {
		t.Errorf("Each during the transaction saw %d values, want 1", n)
	}
	q.Done(batch, false, false)
	if _, ok := q.Get("b", "k"); ok || q.Pending() {
		t.Error("a dropped batch is still found or pending")
	}
}
