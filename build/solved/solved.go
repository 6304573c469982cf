// Package solved is a finished solve of one build graph as exporting its
// cache sees it: the records of its steps and the RUN cache mounts its
// steps used.
package solved

import (
	"context"
	"path/filepath"
	"time"

	"github.com/builder-dev/builder/cache"
	"github.com/builder-dev/builder/cache/remote"
	"github.com/builder-dev/builder/llb"
	"github.com/builder-dev/builder/solver"
	"github.com/builder-dev/builder/solver/ops"
	"github.com/builder-dev/builder/solver/ops/cachedir"
	"github.com/opencontainers/go-digest"
)

// Solve is a finished solve: what exporting the build's image and cache
// needs to know of it.
type Solve struct {
	DB     *cache.DB
	Worker *ops.Worker
	Solver *solver.Solver
	Root   *llb.Vertex
	// Top is the snapshot of the image's file tree ("" for an empty one).
	Top string
	// Epoch is SOURCE_DATE_EPOCH, nil when unset.
	Epoch *time.Time
	// Sess recorded the cache mounts the steps that ran mounted.
	Sess *ops.Session
}

var _ remote.CacheMountSolve = Solve{}

// CacheMounts returns the build's RUN cache mounts: those its steps
// mounted and those of its graph that need no from= source.
func (d Solve) CacheMounts(ctx context.Context) ([]remote.CacheMount, error) {
	var all cachedir.Uses
	if d.Sess != nil && d.Sess.CacheMounts != nil {
		for _, u := range d.Sess.CacheMounts.List() {
			all.Add(u)
		}
	}
	if d.Root != nil {
		for _, u := range cachedir.GraphUses([]*llb.Vertex{d.Root}) {
			all.Add(u)
		}
	}
	root := d.Worker.CacheMounts
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
func (d Solve) Records(ctx context.Context, max bool) (map[digest.Digest]string, error) {
	inImage := map[string]bool{}
	if d.Top != "" {
		chain, err := d.DB.Chain(d.Top)
		if err != nil {
			return nil, err
		}
		for _, c := range chain {
			inImage[c.ID] = true
		}
	}
	recs := map[digest.Digest]string{}
	if d.Root == nil {
		return recs, nil
	}
	var vs []*llb.Vertex
	llb.Walk([]*llb.Vertex{d.Root}, func(v *llb.Vertex) error {
		vs = append(vs, v)
		return nil
	})
	for _, v := range vs {
		key, err := d.Solver.CacheKey(ctx, v)
		if err != nil {
			return nil, err
		}
		r, ok, err := d.Worker.Lookup(ctx, key)
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
