// Package exporter assembles images from snapshot chains (manifest, config,
// compressed layers) and writes them out: to the local image store, to
// registries, and as OCI layout tarballs. Layers are compressed once per
// snapshot and remembered; a rebuild that changed nothing compresses nothing.
package exporter

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"strings"

	"github.com/builder-dev/builder/cache"
	"github.com/builder-dev/builder/cache/content"
	"github.com/builder-dev/builder/snapshot"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
)

// Exporter turns snapshot chains into images in the content store.
type Exporter struct {
	DB        *cache.DB
	Content   *content.Store
	Snapshots snapshot.Snapshotter
	// Log, when set, gets a line for each layer compressed: sizes, time
	// and rate. It must be safe for concurrent writes.
	Log io.Writer
	// Annotations, when set, are the annotations of every manifest
	// assembled (--annotation manifest:...).
	Annotations map[string]string
}

// Image is an assembled image: every blob it names is in the content store.
type Image struct {
	Manifest      ocispec.Descriptor
	ManifestBytes []byte
	Config        []byte
	Layers        []ocispec.Descriptor
	// pending is what AssembleStaged left to Finish.
	pending *flush
}

// Assemble builds the image whose file tree is top's chain and whose config
// is cfg. cfg's history must have one non-empty entry per snapshot of the
// chain; a snapshot that changed nothing is an empty layer, as in BuildKit.
func (e *Exporter) Assemble(ctx context.Context, top string, cfg dockerspec.DockerOCIImage) (*Image, error) {
	return e.AssembleWith(ctx, top, cfg, Options{})
}

// AssembleWith is Assemble with layers, media types and times as o says.
func (e *Exporter) AssembleWith(ctx context.Context, top string, cfg dockerspec.DockerOCIImage, o Options) (*Image, error) {
	img, err := e.AssembleStaged(ctx, top, cfg, o)
	if err != nil {
		return nil, err
	}
	if err := e.Finish(img, nil); err != nil {
		return nil, err
	}
	return img, nil
}

// AssembleStaged is AssembleWith returning as soon as the image's blobs
// can be read whole (a push of it may start), before they are durable and
// recorded: the caller then calls Finish (which does that and names the
// image in the same transaction), or Release if it gives up.
func (e *Exporter) AssembleStaged(ctx context.Context, top string, cfg dockerspec.DockerOCIImage, o Options) (img *Image, err error) {
	if err := o.check(); err != nil {
		return nil, err
	}
	history, layers, base, err := e.layers(top, cfg.History)
	if err != nil {
		return nil, err
	}
	merge, err := o.checkDepth(len(layers))
	if err != nil {
		return nil, err
	}
	markMerged(history, merge)
	f := e.newFlush()
	defer func() {
		if err != nil {
			f.close()
		}
	}()
	descs, diffIDs, err := e.compressAll(ctx, f, layers, merge, base, o)
	if err != nil {
		return nil, err
	}
	fillCreated(history)
	cfg.History = history
	if cfg.Created == nil {
		cfg.Created = lastCreated(history)
	}
	cfg.RootFS = ocispec.RootFS{Type: "layers", DiffIDs: diffIDs}
	img, err = e.writeImage(ctx, f, cfg, descs, o)
	if err != nil {
		return nil, err
	}
	if err := f.blobs.Install(); err != nil {
		return nil, fmt.Errorf("assembling image: %w", err)
	}
	img.pending = f
	return img, nil
}

// Finish makes the blobs of an image from AssembleStaged durable, then
// writes, in one transaction, the records naming them and names (images
// to name in the local store). Called again, or for an image made
// otherwise, it writes names only.
func (e *Exporter) Finish(img *Image, names []cache.Image) error {
	if img.pending == nil {
		return e.DB.PutExport(nil, names)
	}
	if err := img.pending.finish(names); err != nil {
		return fmt.Errorf("recording image %s: %w", img.Manifest.Digest, err)
	}
	return nil
}

// Release gives up what an image from AssembleStaged left unfinished:
// its blobs stay in the store unrecorded (a later build makes them again,
// or a prune removes them), and its layer locks go.
func (e *Exporter) Release(img *Image) {
	if img.pending != nil {
		img.pending.close()
	}
}

// layers pairs the non-empty entries of history with the snapshots of
// top's chain, oldest first, and gives each entry without a time the time
// its step made the layer. It returns the history with those times, the
// snapshots and which of them are layers of base images.
func (e *Exporter) layers(top string, h []ocispec.History) ([]ocispec.History, []cache.Snapshot, map[string]bool, error) {
	// Layers of base images (pulled or loaded) are recorded by chain ID.
	pulled, err := e.DB.Layers()
	if err != nil {
		return nil, nil, nil, err
	}
	base := map[string]bool{}
	for _, id := range pulled {
		base[id] = true
	}
	var chain []cache.Snapshot
	if top != "" {
		c, err := e.DB.Chain(top)
		if err != nil {
			return nil, nil, nil, err
		}
		for i := len(c) - 1; i >= 0; i-- {
			chain = append(chain, c[i])
		}
	}
	history := append([]ocispec.History(nil), h...)
	var layers []cache.Snapshot
	for i := range history {
		if history[i].EmptyLayer {
			continue
		}
		if len(layers) >= len(chain) {
			return nil, nil, nil, fmt.Errorf("assembling image: history has more layers than the %d snapshots of the result", len(chain))
		}
		s := chain[len(layers)]
		if history[i].Created == nil && !base[s.ID] && !s.Created.IsZero() {
			// The step's record says when it made the layer, so a
			// cached rebuild gets the same time (and digest).
			t := s.Created.UTC()
			history[i].Created = &t
		}
		// A step that changed nothing still has its (empty) layer, as
		// BuildKit's images do: the history says a layer was made.
		layers = append(layers, s)
	}
	if len(layers) != len(chain) {
		return nil, nil, nil, fmt.Errorf("assembling image: %d snapshots but history names %d layers", len(chain), len(layers))
	}
	return history, layers, base, nil
}

// markMerged makes the history entries of the merge-1 oldest layers empty:
// the merged layer of the merge oldest takes the place of the newest of
// them.
func markMerged(history []ocispec.History, merge int) {
	n := 0
	for i := range history {
		if !history[i].EmptyLayer && n < merge-1 {
			history[i].EmptyLayer = true
			history[i].Comment = strings.TrimSpace(history[i].Comment + " merged into a later layer (--squash-above)")
			n++
		}
	}
}

// compressAll makes (or finds) the blob of every layer in parallel, the
// merge oldest as one, into f, and returns their descriptors and diff_ids.
func (e *Exporter) compressAll(ctx context.Context, f *flush, layers []cache.Snapshot, merge int, base map[string]bool, o Options) ([]ocispec.Descriptor, []digest.Digest, error) {
	descs := make([]ocispec.Descriptor, len(layers)-max(merge-1, 0))
	diffIDs := make([]digest.Digest, len(descs))
	oldest := layers[:max(merge, 0)]
	layers, err := e.lockLayers(ctx, f, layers[len(oldest):], base, o)
	if err != nil {
		return nil, nil, err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.NumCPU())
	if merge > 0 {
		g.Go(func() error {
			d, diffID, err := e.squashed(gctx, f, oldest, o)
			descs[0], diffIDs[0] = d, diffID
			return err
		})
	}
	for i, s := range layers {
		i += len(descs) - len(layers)
		g.Go(func() error {
			d, diffID, err := e.layerWith(gctx, f, s, base[s.ID], o)
			descs[i], diffIDs[i] = d, diffID
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return nil, nil, err
	}
	return descs, diffIDs, nil
}

// writeImage writes the config and the manifest of an image of layers.
func (e *Exporter) writeImage(ctx context.Context, f *flush, cfg dockerspec.DockerOCIImage, layers []ocispec.Descriptor, o Options) (*Image, error) {
	rawConfig, err := json.Marshal(cfg)
	if err != nil {
		return nil, err
	}
	if o.InlineCache != "" {
		if rawConfig, err = withField(rawConfig, InlineCacheField, o.InlineCache); err != nil {
			return nil, err
		}
	}
	configDigest, err := f.blobs.WriteBytes(ctx, rawConfig)
	if err != nil {
		return nil, err
	}
	manifestType, configType := ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageConfig
	if o.DockerMediaTypes {
		manifestType, configType = DockerManifest, DockerConfig
	}
	m := ocispec.Manifest{
		MediaType: manifestType,
		Config:    ocispec.Descriptor{MediaType: configType, Digest: configDigest, Size: int64(len(rawConfig))},
		Layers:    layers,
	}
	m.Annotations = e.Annotations
	m.SchemaVersion = 2
	rawManifest, err := json.Marshal(m)
	if err != nil {
		return nil, err
	}
	manifestDigest, err := f.blobs.WriteBytes(ctx, rawManifest)
	if err != nil {
		return nil, err
	}
	f.mu.Lock()
	f.manifest, f.config = manifestDigest, configDigest
	f.mu.Unlock()
	return &Image{
		Manifest:      ocispec.Descriptor{MediaType: manifestType, Digest: manifestDigest, Size: int64(len(rawManifest))},
		ManifestBytes: rawManifest,
		Config:        rawConfig,
		Layers:        layers,
	}, nil
}

// withField adds a top-level field holding raw JSON to a JSON object; the
// encoding sorts keys, so the result is deterministic.
func withField(object []byte, name, raw string) ([]byte, error) {
	var m map[string]json.RawMessage
	if err := json.Unmarshal(object, &m); err != nil {
		return nil, err
	}
	m[name] = json.RawMessage(raw)
	return json.Marshal(m)
}

// Size is the total size of the image's blobs: manifest, config, layers.
func (img *Image) Size() int64 {
	n := img.Manifest.Size + int64(len(img.Config))
	for _, l := range img.Layers {
		n += l.Size
	}
	return n
}
