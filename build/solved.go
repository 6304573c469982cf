package build

import (
	"context"
	"path/filepath"
	"time"

	"github.com/builder-dev/builder/cache/remote"
	"github.com/builder-dev/builder/gc"
	"github.com/builder-dev/builder/llb"
	"github.com/builder-dev/builder/solver"
	"github.com/builder-dev/builder/solver/ops"
	"github.com/builder-dev/builder/solver/ops/cachedir"
	"github.com/opencontainers/go-digest"
)

// solved is a finished solve: what exporting the build's image and cache
// needs to know of it.
type solved struct {
	s    *State
	sv   *solver.Solver
	root *llb.Vertex
	// top is the snapshot of the image's file tree ("" for an empty one).
	top string
	// epoch is SOURCE_DATE_EPOCH, nil when unset.
	epoch *time.Time
	// sess recorded the cache mounts the steps that ran mounted.
	sess *ops.Session
}

var _ remote.CacheMountSolve = solved{}

// CacheMounts returns the build's RUN cache mounts: those its steps
// mounted and those of its graph that need no from= source.
func (d solved) CacheMounts(ctx context.Context) ([]remote.CacheMount, error) {
	var all cachedir.Uses
	if d.sess != nil && d.sess.CacheMounts != nil {
		for _, u := range d.sess.CacheMounts.List() {
			all.Add(u)
		}
	}
	if d.root != nil {
		for _, u := range cachedir.GraphUses([]*llb.Vertex{d.root}) {
			all.Add(u)
		}
	}
	root := d.s.worker.CacheMounts
	var out []remote.CacheMount
	for _, u := range all.List() {
		out = append(out, remote.CacheMount{
			Key: u.Key, ID: u.ID, Sharing: u.Sharing, Dir: filepath.Join(root, u.Key, "0"),
			Lock: func(ctx context.Context) (func(), error) {
				_, unlock, err := cachedir.Reader(ctx, root, u)
				return unlock, err
			},
		})
	}
	return out, nil
}

// Records returns the cache keys of root's steps that have a usable
// result, with the result's snapshot ("" for the empty tree); unless max,
// only those whose result is part of top's chain.
func (d solved) Records(ctx context.Context, max bool) (map[digest.Digest]string, error) {
	inImage := map[string]bool{}
	if d.top != "" {
		chain, err := d.s.DB.Chain(d.top)
		if err != nil {
			return nil, err
		}
		for _, c := range chain {
			inImage[c.ID] = true
		}
	}
	recs := map[digest.Digest]string{}
	if d.root == nil {
		return recs, nil
	}
	var vs []*llb.Vertex
	llb.Walk([]*llb.Vertex{d.root}, func(v *llb.Vertex) error {
		vs = append(vs, v)
		return nil
	})
	for _, v := range vs {
		key, err := d.sv.CacheKey(ctx, v)
		if err != nil {
			return nil, err
		}
		r, ok, err := d.s.worker.Lookup(ctx, key)
		if err != nil {
			return nil, err
		}
		if !ok || r.Dir != "" || (!max && r.Snapshot != "" && !inImage[r.Snapshot]) {
			continue
		}
		recs[key] = r.Snapshot
	}
	return recs, nil
}

// inlineCache returns the cache config to put into the image config for
// --cache-to type=inline, or "".
func (d solved) inlineCache(ctx context.Context, opt Options) (string, error) {
	return d.s.remoteCache(opt).Inline(ctx, opt.CacheTo, d, d.epoch)
}

// exportCache writes the build's cache to every --cache-to.
func (d solved) exportCache(ctx context.Context, opt Options) error {
	return d.s.remoteCache(opt).Export(ctx, opt.CacheTo, d, d.epoch)
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
