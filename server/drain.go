package server

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"
)

// Serve serves the API on l until ctx ends. Then it takes no more
// requests, gives the builds running grace to end, cancels those still
// running, and returns once none runs: the caller may then close the
// state the builds use (their records are written by then).
func (s *Server) Serve(ctx context.Context, l net.Listener, grace time.Duration) error {
	// Requests' contexts end when base does: a build whose request body
	// was not read to its end would not see its connection close.
	base, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	hs := &http.Server{Handler: s.Handler(), BaseContext: func(net.Listener) context.Context { return base }}
	served := make(chan error, 1)
	go func() { served <- hs.Serve(l) }()
	var err error
	select {
	case err = <-served:
	case <-ctx.Done():
		sctx, stop := context.WithTimeout(context.Background(), grace)
		hs.Shutdown(sctx) // ends on the timeout if a build outlives grace
		stop()
		err = <-served
	}
	cancel()
	hs.Close()
	s.mu.Lock()
	s.closing = true // no build starts now: inflight.Add would race Wait
	s.mu.Unlock()
	s.inflight.Wait()
	if errors.Is(err, http.ErrServerClosed) {
		return nil
	}
	return err
}

// started counts a build that Serve waits for, or fails once Serve is
// draining; call the func it returns when the build ends.
func (s *Server) started() (func(), error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closing {
		return nil, errors.New("the server is shutting down")
	}
	s.inflight.Add(1)
	return s.inflight.Done, nil
}
