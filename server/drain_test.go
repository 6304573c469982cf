package server

import (
	"context"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/builder-dev/builder/server/api"
	"github.com/builder-dev/builder/source/localctx"
)

// serveOne runs Serve with build on a loopback port and starts one
// build; it returns when build is running, with Serve's result to come.
func serveOne(t *testing.T, grace time.Duration, build BuildFunc) (stop context.CancelFunc, served <-chan error, built <-chan error) {
	t.Helper()
	started := make(chan struct{})
	srv, err := New(t.TempDir(), 0, Policy{}, func(ctx context.Context, req *api.BuildRequest, contextDir, outDir string, em *Emitter) (*api.Result, error) {
		close(started)
		return build(ctx, req, contextDir, outDir, em)
	})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	s, b := make(chan error, 1), make(chan error, 1)
	go func() { s <- srv.Serve(ctx, l, grace) }()
	c, err := Dial("tcp://"+l.Addr().String(), TLSFiles{})
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644)
	tree, err := localctx.NewTree(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		_, err := c.Build(t.Context(), Trees{Main: tree}, "", &api.BuildRequest{}, nil, Handlers{})
		b <- err
	}()
	select {
	case <-started:
	case err := <-b:
		t.Fatalf("build ended before it started: %v", err)
	}
	return cancel, s, b
}

// TestServeWaitsForBuild: told to stop while a build runs, Serve waits
// for it (its client gets its result) before it returns, so that the
// caller closes the state only after the build's records are written.
func TestServeWaitsForBuild(t *testing.T) {
	finish := make(chan struct{})
	stop, served, built := serveOne(t, 10*time.Second, func(ctx context.Context, req *api.BuildRequest, contextDir, outDir string, em *Emitter) (*api.Result, error) {
		<-finish
		return &api.Result{Digest: "sha256:" + strings.Repeat("0", 64)}, nil
	})
	stop()
	select {
	case err := <-served:
		t.Fatalf("Serve returned (%v) while a build ran", err)
	case <-time.After(300 * time.Millisecond):
	}
	close(finish)
	if err := <-built; err != nil {
		t.Errorf("the build running at the stop: %v", err)
	}
	if err := <-served; err != nil {
		t.Error(err)
	}
}

// TestServeCancelsBuildAfterGrace: a build that outlives the grace is
// cancelled, and Serve still returns only once it ended.
func TestServeCancelsBuildAfterGrace(t *testing.T) {
	var ended atomic.Bool
	stop, served, _ := serveOne(t, 100*time.Millisecond, func(ctx context.Context, req *api.BuildRequest, contextDir, outDir string, em *Emitter) (*api.Result, error) {
		<-ctx.Done()
		time.Sleep(300 * time.Millisecond) // its records are written
		ended.Store(true)
		return nil, ctx.Err()
	})
	stop()
	select {
	case err := <-served:
		if err != nil {
			t.Error(err)
		}
		if !ended.Load() {
			t.Error("Serve returned before the cancelled build ended")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the build was not cancelled 10 s after the stop (grace 100 ms)")
	}
}
