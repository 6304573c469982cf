package solver

import (
	"context"
	"fmt"

	"github.com/builder-dev/builder/llb"
	"github.com/opencontainers/go-digest"
)

// recordLater records r under keys in the background: the step's
// dependents start on its result while the cache writes the record, which
// may wait for a flush that makes the step's layer durable (the Worker of
// package ops batches them). unlock (the keys' locks) follows the record,
// so that a build elsewhere waiting for the step finds it. Solve returns
// once every record is written.
func (s *Solver) recordLater(ctx context.Context, v *llb.Vertex, r Result, keys []digest.Digest, unlock func()) {
	s.mu.Lock()
	s.recording++
	s.mu.Unlock()
	go func() {
		// The layer is made: it is recorded even if the build stops.
		err := s.cache.Record(context.WithoutCancel(ctx), r, keys...)
		unlock()
		if err != nil {
			err = s.vertexError(v, fmt.Errorf("recording the result: %w", err))
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.recordErr == nil {
			s.recordErr = err
		}
		if s.recording--; s.recording == 0 {
			s.recorded.Broadcast()
		}
	}()
}

// waitRecords waits for the records recordLater writes and returns the
// first failure.
func (s *Solver) waitRecords() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for s.recording > 0 {
		s.recorded.Wait()
	}
	return s.recordErr
}
