package executor

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/builder-dev/builder/internal/testutil"
)

// A failed start of the shared network that began before the step asked
// (PrepareNetwork's, long ago) is tried again once; one that began after
// is the step's own failure. Waiting for a start heeds the context.
func TestSharedNetworkRetryAndCancel(t *testing.T) {
	testutil.RequiresRoot(t)
	const name = "slirp4netns"
	p := netPlan{helper: &netHelper{name: name, path: "/nonexistent/slirp4netns"}}
	put := func(s *netStart) {
		sharedNets.Lock()
		defer sharedNets.Unlock()
		if sharedNets.nets == nil {
			sharedNets.nets = map[string]*netStart{}
		}
		if old := sharedNets.nets[name]; old != nil && s != nil {
			t.Fatalf("a shared network %s is cached already", name)
		}
		if s == nil {
			delete(sharedNets.nets, name)
		} else {
			sharedNets.nets[name] = s
		}
	}
	defer put(nil)

	stale := errors.New("the start of an hour ago failed")
	old := &netStart{done: make(chan struct{}), err: stale, began: time.Now().Add(-time.Hour)}
	close(old.done)
	put(old)
	_, err := sharedNetwork(context.Background(), p)
	if err == nil || errors.Is(err, stale) || !strings.Contains(err.Error(), "/nonexistent/slirp4netns") {
		t.Errorf("sharedNetwork after a stale failure = %v, want the retry's own failure", err)
	}
	put(nil)

	// A start still under way: the step's context ends the wait.
	put(&netStart{done: make(chan struct{}), began: time.Now()})
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	start := time.Now()
	if _, err := sharedNetwork(ctx, p); !errors.Is(err, context.DeadlineExceeded) || time.Since(start) > 5*time.Second {
		t.Errorf("sharedNetwork with a start under way and a context that ends = %v after %v, want the context's error", err, time.Since(start))
	}
}
