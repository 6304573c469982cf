// Package drain stops a build server without cutting its builds short:
// it takes no new builds but goes on serving those running, with what
// they ask of their clients, for a grace; then it cancels them, and tells
// its caller whether the state they use may be closed.
package drain

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"
)

// ErrBuildsRunning is Serve's error when builds still run CancelBound
// after their cancellation: the caller must not close the state under
// them, but exit as a killed process would.
var ErrBuildsRunning = errors.New("builds did not stop")

// ErrShutdown is what a new build, its context or its blobs get once the
// server drains.
var ErrShutdown = errors.New("the server is shutting down")

// CancelBound bounds the wait for cancelled builds to end, and for the
// handlers of ended builds to send their results.
var CancelBound = 10 * time.Second

// Gate admits builds until the drain begins, and tells when those
// admitted have ended. Its zero value admits builds.
type Gate struct {
	mu       sync.Mutex
	inflight sync.WaitGroup
	closing  bool
}

// Start counts a build that the drain waits for, or fails once the drain
// began; call the func it returns when the build ends (deferred: a panic
// net/http recovers must not keep the drain waiting for good).
func (g *Gate) Start() (func(), error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closing {
		return nil, ErrShutdown
	}
	g.inflight.Add(1)
	return g.inflight.Done, nil
}

// Closing reports whether the drain began: requests towards a new build
// are refused then.
func (g *Gate) Closing() bool {
	g.mu.Lock()
	defer g.mu.Unlock()
	return g.closing
}

// close begins the drain and returns a channel closed once no build runs.
func (g *Gate) close() <-chan struct{} {
	g.mu.Lock()
	g.closing = true // no build starts now: inflight.Add would race Wait
	g.mu.Unlock()
	idle := make(chan struct{})
	go func() {
		g.inflight.Wait()
		close(idle)
	}()
	return idle
}

// Serve serves h on l until ctx ends. Then the gate admits no new build
// while h goes on serving the builds running (secrets and SSH agents are
// answered on requests of their own), which get grace to end; those still
// running at its end, or once now is closed (a second signal), are
// cancelled. It returns once none runs: the caller may then close the
// state the builds use (their records are written by then); or
// ErrBuildsRunning.
func (g *Gate) Serve(ctx context.Context, l net.Listener, h http.Handler, grace time.Duration, now <-chan struct{}) error {
	// Requests' contexts end when base does: a build whose request body
	// was not read to its end would not see its connection close.
	base, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	hs := &http.Server{Handler: h, BaseContext: func(net.Listener) context.Context { return base }}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(l) }()
	var err error
	select {
	case err = <-served:
	case <-ctx.Done():
	}
	idle := g.close()
	if err == nil {
		t := time.NewTimer(grace)
		select {
		case <-idle:
		case <-t.C:
		case <-now:
		}
		t.Stop()
	}
	// Builds still running end now, and those queued are refused.
	cancel()
	t := time.NewTimer(CancelBound)
	defer t.Stop()
	select {
	case <-idle:
	case <-t.C:
		hs.Close()
		return fmt.Errorf("%w %v after their cancellation: exiting with the state as a killed process leaves it", ErrBuildsRunning, CancelBound)
	}
	// The handlers of the builds send their results before the
	// connections close.
	sctx, stop := context.WithTimeout(context.Background(), CancelBound)
	hs.Shutdown(sctx)
	stop()
	hs.Close()
	if err == nil || errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// SecondSignal returns a channel closed at the second SIGINT or SIGTERM
// from now, for Serve's now: the first ends its ctx (signal.NotifyContext
// goes on catching the others, which would then do nothing).
func SecondSignal() <-chan struct{} {
	sigs, now := make(chan os.Signal, 2), make(chan struct{})
	signal.Notify(sigs, os.Interrupt, syscall.SIGTERM)
	go func() {
		<-sigs
		<-sigs
		signal.Stop(sigs)
		close(now)
	}()
	return now
}
