package remote

import (
	"context"
	"fmt"

	"github.com/builder-dev/builder/cache/remote/mountcache"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// CacheMount is one RUN --mount=type=cache directory of a build, for an
// export with cache-mounts=true.
type CacheMount = mountcache.Mount

// DefaultCacheMountsMaxSize is the largest cache mount exported unless
// cache-mounts-max-size says otherwise.
const DefaultCacheMountsMaxSize = mountcache.DefaultMaxSize

// CacheMountSolve is a Solve that knows the cache mounts its build used.
type CacheMountSolve interface {
	Solve
	CacheMounts(ctx context.Context) ([]CacheMount, error)
}

// MountRestorer is the solver cache Import returns when a --cache-from
// holds cache mounts: a RUN step about to mount cache key at dir asks it
// to fill dir first.
type MountRestorer interface {
	// RestoreCacheMount fills dir, when it is absent or empty, with the
	// files of cache mount key of the first imported cache that has it,
	// and reports whether it did. A local cache that has files is never
	// touched: it is this machine's own, and at least as warm for its
	// builds. A cache that cannot be restored is a warning; the step then
	// starts with what is there.
	RestoreCacheMount(ctx context.Context, key, dir string) (bool, error)
}

var _ MountRestorer = (*importCache)(nil)

// exportMounts adds the cache mounts of solve to cfg and their part blobs
// to blobs, unless spec leaves them out.
func (l *Local) exportMounts(ctx context.Context, spec Spec, solve Solve, cfg *config, blobs []ocispec.Descriptor) ([]ocispec.Descriptor, error) {
	ms, ok := solve.(CacheMountSolve)
	if !spec.CacheMounts || !ok {
		return blobs, nil
	}
	mounts, err := ms.CacheMounts(ctx)
	if err != nil {
		return nil, err
	}
	limit := spec.CacheMountsMaxSize
	if limit <= 0 {
		limit = DefaultCacheMountsMaxSize
	}
	seen := map[digest.Digest]bool{}
	for _, b := range blobs {
		seen[b.Digest] = true
	}
	for _, m := range mounts {
		cm, err := mountcache.Export(ctx, l.Content, m, limit, l.warn)
		if err != nil {
			return nil, fmt.Errorf("cache mount %s: %w", m.ID, err)
		}
		if cm == nil {
			continue
		}
		cfg.CacheMounts = append(cfg.CacheMounts, *cm)
		for _, p := range cm.Parts {
			if !seen[p.Blob.Digest] {
				seen[p.Blob.Digest] = true
				blobs = append(blobs, p.Blob)
			}
		}
	}
	return blobs, nil
}

// RestoreCacheMount implements MountRestorer.
func (c *importCache) RestoreCacheMount(ctx context.Context, key, dir string) (bool, error) {
	if !mountcache.EmptyOrAbsent(dir) {
		return false, nil
	}
	for _, src := range c.sources {
		cm, ok := src.mounts[key]
		if !ok {
			continue
		}
		err := mountcache.Restore(ctx, c.l.Content, cm, dir, src.fetch)
		if err == nil {
			return true, nil
		}
		if ctx.Err() != nil {
			return false, ctx.Err()
		}
		c.l.warn(fmt.Sprintf("restoring cache mount %s from %s: %v (the step starts without it)", cm.ID, src.name, err))
	}
	return false, nil
}
