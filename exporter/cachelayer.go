package exporter

import (
	"context"

	"github.com/builder-dev/builder/cache"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// AnnotationDiffID is the annotation kept on the descriptors of a snapshot
// record's Blobs: the digest of the layer tar the blob compresses.
const AnnotationDiffID = annotationDiffID

// CacheLayer returns the blob of snapshot s as an image export with options
// o would write it (making and remembering it the first time), its diff_id,
// and the key under which a snapshot record's Blobs keeps it: a runner that
// imports the blob under that key exports the same bytes again. base marks a
// layer of a base image, kept as it was pulled.
func (e *Exporter) CacheLayer(ctx context.Context, s cache.Snapshot, base bool, o Options) (ocispec.Descriptor, digest.Digest, string, error) {
	if err := o.check(); err != nil {
		return ocispec.Descriptor{}, "", "", err
	}
	d, diffID, err := e.layerShared(ctx, s, base, o)
	if err != nil {
		return ocispec.Descriptor{}, "", "", err
	}
	if base && !o.ForceCompression {
		return d, diffID, CompressionOf(d.MediaType), nil
	}
	epoch := o.SourceDateEpoch
	if base {
		epoch = nil
	}
	return d, diffID, memoKey(o.compression(), o.Level, epoch), nil
}
