package cachedir

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/builder-dev/builder/llb"
)

// TestAcquireSharing: shared users share copy 0, private users get a copy
// each, a locked user waits for the others, and Remove refuses a cache in
// use.
func TestAcquireSharing(t *testing.T) {
	root := t.TempDir()
	ctx := t.Context()
	d1, un1, err := Acquire(ctx, root, "k", "id1", llb.SharingShared)
	if err != nil {
		t.Fatal(err)
	}
	d2, un2, err := Acquire(ctx, root, "k", "id1", "")
	if err != nil || d2 != d1 || filepath.Base(d1) != "0" {
		t.Fatalf("second shared Acquire = %s, %v; want %s", d2, err, d1)
	}
	p1, unp1, err := Acquire(ctx, root, "k", "id1", llb.SharingPrivate)
	if err != nil {
		t.Fatal(err)
	}
	p2, unp2, err := Acquire(ctx, root, "k", "id1", llb.SharingPrivate)
	if err != nil || p1 == p2 {
		t.Fatalf("private Acquires = %s and %s (%v); want two copies", p1, p2, err)
	}
	unp1()
	unp2()

	short, cancel := context.WithTimeout(ctx, 100*time.Millisecond)
	defer cancel()
	if _, _, err := Acquire(short, root, "k", "id1", llb.SharingLocked); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("locked Acquire while shared users hold the cache = %v, want it to wait until the deadline", err)
	}
	mounts, err := List(root)
	if err != nil || len(mounts) != 1 || mounts[0].ID != "id1" {
		t.Fatalf("List = %+v, %v; want the one cache id1", mounts, err)
	}
	if removed, err := Remove(ctx, mounts[0]); err != nil || removed {
		t.Errorf("Remove of a cache in use = %v, %v; want false", removed, err)
	}
	un1()
	un2()
	if _, unl, err := Acquire(ctx, root, "k", "id1", llb.SharingLocked); err != nil {
		t.Errorf("locked Acquire once released = %v", err)
	} else {
		unl()
	}
	if removed, err := Remove(ctx, mounts[0]); err != nil || !removed {
		t.Errorf("Remove of an unused cache = %v, %v; want true", removed, err)
	}
	if _, err := os.Stat(mounts[0].Dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the cache is still there: %v", err)
	}
	if _, _, err := Acquire(ctx, root, "k", "id1", "bogus"); err == nil {
		t.Error("Acquire with an unknown sharing mode = nil error")
	}
}
