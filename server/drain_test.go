package server

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/builder-dev/builder/server/api"
	"github.com/builder-dev/builder/server/drain"
	"github.com/builder-dev/builder/server/session"
	"github.com/builder-dev/builder/source/localctx"
)

// serveOne runs Serve with build on a loopback port and starts one
// build, its requests answered by h; it returns when build is running,
// with Serve's result to come, and a client of the server.
func serveOne(t *testing.T, grace time.Duration, now <-chan struct{}, h Handlers, build BuildFunc) (stop context.CancelFunc, served <-chan error, built <-chan error, c *Client) {
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
	go func() { s <- srv.Serve(ctx, l, grace, now) }()
	c, err = Dial("tcp://"+l.Addr().String(), TLSFiles{})
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
		_, err := c.Build(t.Context(), Trees{Main: tree}, "", &api.BuildRequest{}, nil, h)
		b <- err
	}()
	select {
	case <-started:
	case err := <-b:
		t.Fatalf("build ended before it started: %v", err)
	}
	return cancel, s, b, c
}

// TestServeWaitsForBuild: told to stop while a build runs, Serve waits
// for it (its client gets its result) before it returns, so that the
// caller closes the state only after the build's records are written.
func TestServeWaitsForBuild(t *testing.T) {
	finish := make(chan struct{})
	stop, served, built, _ := serveOne(t, 10*time.Second, nil, Handlers{}, func(ctx context.Context, req *api.BuildRequest, contextDir, outDir string, em *Emitter) (*api.Result, error) {
		<-finish
		return result, nil
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
	stop, served, _, _ := serveOne(t, 100*time.Millisecond, nil, Handlers{}, func(ctx context.Context, req *api.BuildRequest, contextDir, outDir string, em *Emitter) (*api.Result, error) {
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

var result = &api.Result{Digest: "sha256:" + strings.Repeat("0", 64)}

// TestServeDrainAnswersSecrets: a build that asks its client for a
// secret after the stop began (the client answers on a request of its
// own) gets it and ends well, while a new build is refused in a way that
// sends a pool's client to the next server.
func TestServeDrainAnswersSecrets(t *testing.T) {
	ask := make(chan struct{})
	h := Handlers{Local: session.Local{Secrets: map[string]func() ([]byte, error){"s": func() ([]byte, error) { return []byte("value"), nil }}}}
	stop, served, built, c := serveOne(t, 10*time.Second, nil, h, func(ctx context.Context, req *api.BuildRequest, contextDir, outDir string, em *Emitter) (*api.Result, error) {
		<-ask
		v, err := em.Secret(ctx, "s")
		if err != nil {
			return nil, err
		}
		if string(v) != "value" {
			return nil, fmt.Errorf("secret s = %q, want value", v)
		}
		return result, nil
	})
	stop()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		resp, err := c.do(t.Context(), http.MethodPost, api.Version+"/contexts", strings.NewReader("{}"))
		if err != nil {
			if !errors.Is(err, ErrUnreachable) {
				t.Errorf("a new build's context while draining: %v, want ErrUnreachable (the next server)", err)
			}
			break
		}
		resp.Body.Close()
		if time.Now().After(deadline) {
			t.Fatal("the draining server still takes contexts of new builds")
		}
	}
	close(ask)
	if err := <-built; err != nil {
		t.Errorf("the build asking for its secret after the stop: %v", err)
	}
	if err := <-served; err != nil {
		t.Error(err)
	}
}

// TestServeSecondStopCancels: once now is closed (a second signal), the
// builds running are cancelled without waiting for the grace to end.
func TestServeSecondStopCancels(t *testing.T) {
	now := make(chan struct{})
	stop, served, built, _ := serveOne(t, time.Minute, now, Handlers{}, func(ctx context.Context, req *api.BuildRequest, contextDir, outDir string, em *Emitter) (*api.Result, error) {
		<-ctx.Done()
		return nil, ctx.Err()
	})
	stop()
	time.Sleep(100 * time.Millisecond)
	close(now)
	select {
	case err := <-served:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not cancel the build 10 s after now closed (grace 1 min)")
	}
	if err := <-built; err == nil {
		t.Error("the cancelled build succeeded")
	}
}

// TestServeBoundsCancelledBuilds: a build that goes on after its
// cancellation makes Serve return ErrBuildsRunning after CancelBound,
// not wait for it: its caller must then leave the state open.
func TestServeBoundsCancelledBuilds(t *testing.T) {
	defer func(b time.Duration) { drain.CancelBound = b }(drain.CancelBound)
	drain.CancelBound = 200 * time.Millisecond
	release := make(chan struct{})
	defer close(release)
	stop, served, _, _ := serveOne(t, 100*time.Millisecond, nil, Handlers{}, func(ctx context.Context, req *api.BuildRequest, contextDir, outDir string, em *Emitter) (*api.Result, error) {
		<-release
		return nil, errors.New("released")
	})
	stop()
	select {
	case err := <-served:
		if !errors.Is(err, ErrBuildsRunning) {
			t.Errorf("Serve = %v, want ErrBuildsRunning", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve still waits 10 s after cancelling a build that does not end")
	}
}

// TestServeDrainsAfterPanic: a build that panicked (net/http recovers
// it) does not keep Serve waiting.
func TestServeDrainsAfterPanic(t *testing.T) {
	stop, served, built, _ := serveOne(t, time.Minute, nil, Handlers{}, func(ctx context.Context, req *api.BuildRequest, contextDir, outDir string, em *Emitter) (*api.Result, error) {
		panic("a bug in the build")
	})
	if err := <-built; err == nil {
		t.Error("the build that panicked succeeded")
	}
	stop()
	select {
	case err := <-served:
		if err != nil {
			t.Error(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve waits for a build that panicked (grace 1 min)")
	}
}
