package exporter

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/builder-dev/builder/cache"
	"github.com/builder-dev/builder/snapshot"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// DefaultMaxLayers is the most layers an image may have unless
// Options.MaxLayers says otherwise. Docker's and podman's overlay storage
// mount an image's layers as the lower dirs of one overlay, whose options
// must fit in one 4 KiB page: with their short layer links ("l/" and 26
// characters, mounted from the storage directory) 139 lower dirs fit on
// Linux 6.18 with 4 KiB pages (measured: 140 fail), and Docker's overlay2
// refuses more than 128 lowers including the container's init layer.
// 125 leaves room for both.
const DefaultMaxLayers = 125

// ErrTooManyLayers is returned by AssembleWith for an image with more
// layers than Options.MaxLayers.
var ErrTooManyLayers = fmt.Errorf("too many layers")

// squashKeyPrefix marks the memo of a squashed layer in the Blobs of the
// top-most snapshot it covers; layerWith never takes it for that
// snapshot's own layer.
const squashKeyPrefix = "squash/"

// checkDepth applies Options.SquashAbove and MaxLayers to an image's
// non-empty layers. It returns how many of the oldest layers are to be
// merged into one (0: none).
func (o Options) checkDepth(layers int) (merge int, err error) {
	limit := o.MaxLayers
	if limit == 0 {
		limit = DefaultMaxLayers
	}
	if o.SquashAbove > 0 && layers > o.SquashAbove {
		merge = layers - o.SquashAbove + 1
		layers = o.SquashAbove
	}
	if limit > 0 && layers > limit {
		return 0, fmt.Errorf("%w: the image has %d layers, and Docker's and podman's overlay storage cannot run an image of more than %d "+
			"(their overlay mount options must fit in one 4 KiB page); join steps (RUN a && b) or build with --squash-above=%d to merge the oldest layers into one",
			ErrTooManyLayers, layers, limit, limit)
	}
	return merge, nil
}

// squashed returns one layer with the merged file tree of layers (oldest
// first): what a container sees with all of them stacked, written as a
// plain tree (no whiteouts: nothing is below it). It is remembered in the
// top-most layer's record, per compression and epoch.
func (e *Exporter) squashed(ctx context.Context, f *flush, layers []cache.Snapshot, o Options) (ocispec.Descriptor, digest.Digest, error) {
	top := layers[len(layers)-1]
	want := o.compression()
	// top's chain and the count name the layers merged.
	key := squashKeyPrefix + fmt.Sprint(len(layers)) + "/" + memoKey(want, o.Level, o.SourceDateEpoch)
	mt, err := LayerMediaType(want, o.DockerMediaTypes)
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	if d, ok := top.Blobs[key]; ok && e.Content.Exists(d.Digest) && d.Annotations[annotationDiffID] != "" {
		return ocispec.Descriptor{MediaType: mt, Digest: d.Digest, Size: d.Size}, digest.Digest(d.Annotations[annotationDiffID]), nil
	}
	parents := make([]string, len(layers))
	for i, s := range layers {
		parents[len(layers)-1-i] = s.ID
	}
	dgst, size, diffID, _, err := e.writeLayer(ctx, f, want, o.Level, func(dst io.Writer) error {
		return e.Snapshots.WithMounts(ctx, [][]snapshot.Mount{e.Snapshots.View(parents)}, func(roots []string) error {
			return snapshot.WriteDiff(ctx, roots[0], dst, snapshot.DiffOptions{SourceDateEpoch: o.SourceDateEpoch})
		})
	}, nil)
	if err != nil {
		return ocispec.Descriptor{}, "", fmt.Errorf("merging the oldest %d layers into one: %w", len(layers), err)
	}
	if e.Log != nil {
		fmt.Fprintf(e.Log, "merged the oldest %d layers into %s (%s)\n", len(layers), diffID.Encoded()[:12], strings.TrimSpace(want))
	}
	memo := ocispec.Descriptor{MediaType: mt, Digest: dgst, Size: size, Annotations: map[string]string{annotationDiffID: diffID.String()}}
	f.remember(top.ID, key, memo, "", false)
	return ocispec.Descriptor{MediaType: mt, Digest: dgst, Size: size}, diffID, nil
}
