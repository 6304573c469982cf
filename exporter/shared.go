package exporter

import (
	"context"

	"github.com/builder-dev/builder/cache"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// layerShared is layerWith on a state directory that builds in other
// processes share, for one layer alone: a layer blob another build is
// writing is waited for and then used, rather than compressed twice at
// once. The blob and its record are written before the lock is released.
// (An assembly locks its layers together: see lockLayers.)
func (e *Exporter) layerShared(ctx context.Context, s cache.Snapshot, base bool, o Options) (ocispec.Descriptor, digest.Digest, error) {
	epoch := o.SourceDateEpoch
	if base {
		epoch = nil
	}
	key := memoKey(o.compression(), o.Level, epoch)
	f := e.newFlush()
	defer f.close()
	if d, ok := s.Blobs[key]; !ok || !e.Content.Exists(d.Digest) {
		lock, err := e.DB.LockKey(ctx, layerLockKey(s.ID, key), nil)
		if err != nil {
			return ocispec.Descriptor{}, "", err
		}
		f.locks = append(f.locks, lock)
		// What the build that held the lock wrote.
		if fresh, err := e.DB.Snapshot(s.ID); err == nil {
			s = fresh
		}
	}
	d, diffID, err := e.layerWith(ctx, f, s, base, o)
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	return d, diffID, f.finish(nil)
}
