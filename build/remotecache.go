package build

import (
	"context"
	"time"

	"github.com/builder-dev/builder/build/solved"
	"github.com/builder-dev/builder/cache/remote"
	"github.com/builder-dev/builder/gc"
	"github.com/builder-dev/builder/llb"
	"github.com/builder-dev/builder/solver"
	"github.com/builder-dev/builder/solver/ops"
	"github.com/builder-dev/builder/solver/ops/cachedir"
)

// inlineCache returns the cache config to put into the image config for
// --cache-to type=inline, or "".
func (s *State) inlineCache(ctx context.Context, opt Options, d solved.Solve) (string, error) {
	return s.remoteCache(opt).Inline(ctx, opt.CacheTo, d, d.Epoch)
}

// exportCache writes the build's cache to every --cache-to.
func (s *State) exportCache(ctx context.Context, opt Options, d remote.Solve, epoch *time.Time) error {
	return s.remoteCache(opt).Export(ctx, opt.CacheTo, d, epoch)
}

// solve is root's finished solve by sv.
func (s *State) solve(sv *solver.Solver, root *llb.Vertex, top string, epoch *time.Time, sess *ops.Session) solved.Solve {
	return solved.Solve{DB: s.DB, Worker: s.worker, Solver: sv, Root: root, Top: top, Epoch: epoch, Sess: sess}
}

// useCacheFrom puts the caches of opt.CacheFrom behind the build's cache.
// A --cache-from with cache mounts fills the steps' empty cache mounts,
// and a --cache-to with cache-mounts=true has sess record them.
func (s *State) useCacheFrom(ctx context.Context, opt Options, use *gc.Use, sess *ops.Session) error {
	for _, c := range opt.CacheTo {
		if c.CacheMounts {
			sess.CacheMounts = &cachedir.Uses{}
		}
	}
	if len(opt.CacheFrom) == 0 || opt.NoCache {
		return nil
	}
	c, err := s.remoteCache(opt).Import(ctx, opt.CacheFrom, use.Cache)
	if err != nil {
		return err
	}
	use.Cache = c
	if r, ok := c.(remote.MountRestorer); ok {
		sess.RestoreCache = r.RestoreCacheMount
	}
	return nil
}

// remoteCache is the state directory as the remote cache of a build with
// opt sees it.
func (s *State) remoteCache(opt Options) *remote.Local {
	return &remote.Local{
		DB: s.DB, Content: s.Content, Snapshots: s.Snapshots, Registries: s.Registries,
		Puller: s.worker.Puller, Keychain: opt.Keychain, Warn: opt.Warn,
	}
}
