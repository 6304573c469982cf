// Package exporter assembles images from snapshot chains (manifest, config,
// compressed layers) and writes them out: to the local image store, to
// registries, and as OCI layout tarballs. Layers are compressed once per
// snapshot and remembered; a rebuild that changed nothing compresses nothing.
package exporter

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"runtime"

	"github.com/builder-dev/builder/cache"
	"github.com/builder-dev/builder/cache/content"
	"github.com/builder-dev/builder/snapshot"
	kgzip "github.com/klauspost/compress/gzip"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
)

// Exporter turns snapshot chains into images in the content store.
type Exporter struct {
	DB        *cache.DB
	Content   *content.Store
	Snapshots *snapshot.Snapshotter
}

// Image is an assembled image: every blob it names is in the content store.
type Image struct {
	Manifest      ocispec.Descriptor
	ManifestBytes []byte
	Config        []byte
	Layers        []ocispec.Descriptor
}

// Assemble builds the image whose file tree is top's chain and whose config
// is cfg. cfg's history must have one non-empty entry per snapshot of the
// chain; snapshots that changed nothing become empty_layer entries.
func (e *Exporter) Assemble(ctx context.Context, top string, cfg dockerspec.DockerOCIImage) (*Image, error) {
	var chain []cache.Snapshot
	if top != "" {
		c, err := e.DB.Chain(top)
		if err != nil {
			return nil, err
		}
		for i := len(c) - 1; i >= 0; i-- {
			chain = append(chain, c[i])
		}
	}
	history := append([]ocispec.History(nil), cfg.History...)
	var layers []cache.Snapshot
	next := 0
	for i := range history {
		if history[i].EmptyLayer {
			continue
		}
		if next >= len(chain) {
			return nil, fmt.Errorf("assembling image: history has more layers than the %d snapshots of the result", len(chain))
		}
		s := chain[next]
		next++
		if s.Empty {
			history[i].EmptyLayer = true
			continue
		}
		layers = append(layers, s)
	}
	if next != len(chain) {
		return nil, fmt.Errorf("assembling image: %d snapshots but history names %d layers", len(chain), next)
	}

	descs := make([]ocispec.Descriptor, len(layers))
	diffIDs := make([]digest.Digest, len(layers))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.NumCPU())
	for i, s := range layers {
		g.Go(func() error {
			d, diffID, err := e.layer(gctx, s)
			descs[i], diffIDs[i] = d, diffID
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}

	cfg.History = history
	cfg.RootFS = ocispec.RootFS{Type: "layers", DiffIDs: diffIDs}
	rawConfig, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	configDigest, err := e.Content.WriteBytes(ctx, rawConfig)
	if err != nil {
		return nil, err
	}
	m := ocispec.Manifest{
		MediaType: ocispec.MediaTypeImageManifest,
		Config:    ocispec.Descriptor{MediaType: ocispec.MediaTypeImageConfig, Digest: configDigest, Size: int64(len(rawConfig))},
		Layers:    descs,
	}
	m.SchemaVersion = 2
	rawManifest, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	manifestDigest, err := e.Content.WriteBytes(ctx, rawManifest)
	if err != nil {
		return nil, err
	}
	return &Image{
		Manifest:      ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: manifestDigest, Size: int64(len(rawManifest))},
		ManifestBytes: rawManifest,
		Config:        rawConfig,
		Layers:        descs,
	}, nil
}

// layer returns the gzip blob of snapshot s, compressing it the first time.
func (e *Exporter) layer(ctx context.Context, s cache.Snapshot) (ocispec.Descriptor, digest.Digest, error) {
	if d, ok := s.Blobs["gzip"]; ok && s.DiffID != "" && e.Content.Exists(d.Digest) {
		d.MediaType = ocispec.MediaTypeImageLayerGzip
		return ocispec.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size}, s.DiffID, nil
	}
	w, err := e.Content.Writer(ctx)
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	defer w.Close()
	zw, err := kgzip.NewWriterLevel(w, kgzip.DefaultCompression)
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	h := sha256.New()
	if err := snapshot.WriteDiff(ctx, e.Snapshots.FS(s.ID), io.MultiWriter(zw, h), snapshot.DiffOptions{}); err != nil {
		return ocispec.Descriptor{}, "", fmt.Errorf("writing layer of %s: %w", s.Description, err)
	}
	if err := zw.Close(); err != nil {
		return ocispec.Descriptor{}, "", err
	}
	dgst, size, err := w.Commit("", -1)
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: dgst, Size: size}
	s.DiffID = digest.Digest("sha256:" + hex.EncodeToString(h.Sum(nil)))
	if s.Blobs == nil {
		s.Blobs = map[string]ocispec.Descriptor{}
	}
	s.Blobs["gzip"] = desc
	if err := e.DB.PutSnapshot(s); err != nil {
		return ocispec.Descriptor{}, "", err
	}
	return desc, s.DiffID, nil
}
