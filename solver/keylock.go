package solver

import (
	"context"
	"fmt"

	"github.com/builder-dev/builder/llb"
	"github.com/opencontainers/go-digest"
)

// KeyLocker is a Cache shared with other processes. The solver locks a
// step's keys before it runs the step and looks them up again once it
// holds them, so that a build elsewhere running the same step is waited
// for rather than repeated; unlock follows the step's Record.
type KeyLocker interface {
	LockKey(ctx context.Context, key digest.Digest, waiting func(holder string)) (unlock func(), err error)
}

// lockKeys locks v's keys if the cache is shared (definition keys before
// content keys, in one order everywhere, so two builds never wait for
// each other), then looks them up again: the build that held them may
// have recorded the result.
func (s *Solver) lockKeys(ctx context.Context, v *llb.Vertex, key, contentKey digest.Digest) (unlock func(), r Result, ok bool, err error) {
	kl, shared := s.cache.(KeyLocker)
	if !shared {
		return func() {}, Result{}, false, nil
	}
	keys := []digest.Digest{key}
	if contentKey != key {
		keys = append(keys, contentKey)
	}
	var unlocks []func()
	unlock = func() {
		for _, u := range unlocks {
			u()
		}
	}
	waiting := func(holder string) {
		if holder == "" {
			holder = "another build"
		}
		fmt.Fprintf(&logWriter{s: s, v: v}, "waiting for %s, which runs this step\n", holder)
	}
	for _, k := range keys {
		u, err := kl.LockKey(ctx, k, waiting)
		if err != nil {
			unlock()
			return nil, Result{}, false, s.vertexError(v, err)
		}
		unlocks = append(unlocks, u)
	}
	for _, k := range keys {
		r, ok, err := s.lookup(ctx, v, k)
		if err != nil || ok {
			unlock()
			return nil, r, ok, err
		}
	}
	return unlock, Result{}, false, nil
}
