package exporter

import (
	"context"

	"github.com/builder-dev/builder/cache"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// layerShared is layerWith on a state directory that builds in other
// processes share: a layer blob another build is writing is waited for and
// then used, rather than compressed twice at once.
func (e *Exporter) layerShared(ctx context.Context, s cache.Snapshot, base bool, o Options) (ocispec.Descriptor, digest.Digest, error) {
	epoch := o.SourceDateEpoch
	if base {
		epoch = nil
	}
	key := memoKey(o.compression(), o.Level, epoch)
	if d, ok := s.Blobs[key]; ok && e.Content.Exists(d.Digest) {
		return e.layerWith(ctx, s, base, o)
	}
	lock, err := e.DB.LockKey(ctx, digest.FromString("layer\x00"+s.ID+"\x00"+key), nil)
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	defer lock.Unlock()
	// What the build that held the lock wrote.
	if fresh, err := e.DB.Snapshot(s.ID); err == nil {
		s = fresh
	}
	return e.layerWith(ctx, s, base, o)
}
