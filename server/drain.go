package server

import (
	"context"
	"net"
	"net/http"
	"time"

	"github.com/builder-dev/builder/server/drain"
)

// ErrBuildsRunning and SecondSignal: see package drain.
var (
	ErrBuildsRunning = drain.ErrBuildsRunning
	SecondSignal     = drain.SecondSignal
)

// Serve serves the API on l until ctx ends. Then it takes no new builds
// but goes on serving those running, with their requests for secrets and
// SSH agents, for grace, and cancels those still running then or once
// now is closed. It returns once none runs (the caller may then close
// the state), or ErrBuildsRunning (drain.Gate.Serve).
func (s *Server) Serve(ctx context.Context, l net.Listener, grace time.Duration, now <-chan struct{}) error {
	return s.gate.Serve(ctx, l, s.Handler(), grace, now)
}

// refused answers 503 to a request towards a new build once Serve
// drains: the client's pool tries the next server.
func (s *Server) refused(w http.ResponseWriter) bool {
	if s.gate.Closing() {
		httpError(w, http.StatusServiceUnavailable, drain.ErrShutdown)
		return true
	}
	return false
}
