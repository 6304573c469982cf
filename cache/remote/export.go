package remote

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/builder-dev/builder/exporter"
	"github.com/builder-dev/builder/exporter/archive"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Solve is a finished build whose cache is exported.
type Solve interface {
	// Records returns the cache keys of the build's steps that have a
	// result, each with the result's snapshot ("" for the empty tree):
	// with max those of every step, else only those whose result is in
	// the image's layer chain.
	Records(ctx context.Context, max bool) (map[digest.Digest]string, error)
}

// Export writes the cache of a finished build to every spec of type
// registry or local (type=inline goes into the image: see Inline): with
// mode=min the records of the steps whose results are in the image's
// chain, with mode=max those of every step. The layer blobs are written as
// an image export with the spec's compression and SOURCE_DATE_EPOCH epoch
// would write them.
func (l *Local) Export(ctx context.Context, specs []Spec, solve Solve, epoch *time.Time) error {
	for _, spec := range specs {
		if err := l.exportTo(ctx, spec, solve, epoch); err != nil {
			if spec.IgnoreError {
				l.warn(fmt.Sprintf("exporting the cache (type=%s): %v", spec.Type, err))
				continue
			}
			return fmt.Errorf("exporting the cache (type=%s): %w", spec.Type, err)
		}
	}
	return nil
}

func (l *Local) exportTo(ctx context.Context, spec Spec, solve Solve, epoch *time.Time) error {
	if err := spec.check(true); err != nil {
		return err
	}
	if spec.Type == TypeInline {
		return nil // written into the image config: see Inline
	}
	recs, err := solve.Records(ctx, spec.Max)
	if err != nil {
		return err
	}
	cfg, blobs, err := l.config(ctx, recs, spec.layerOptions(epoch))
	if err != nil {
		return err
	}
	if blobs, err = l.exportMounts(ctx, spec, solve, cfg, blobs); err != nil {
		return err
	}
	desc, err := l.writeManifest(ctx, cfg, blobs)
	if err != nil {
		return err
	}
	switch spec.Type {
	case TypeRegistry:
		ref, err := l.Registries.ParseReference(spec.Ref)
		if err != nil {
			return err
		}
		return exporter.Push(ctx, l.Content, desc, ref, l.Keychain, l.DB)
	case TypeLocal:
		return l.writeLayout(spec.Dir, desc, blobs)
	}
	return fmt.Errorf("cache type %q cannot be exported", spec.Type)
}

// Inline returns the cache config of the image's own layers for the first
// spec of type inline, as JSON for exporter.Options.InlineCache, or ""
// when there is none. Its layers are the image's: importers fetch them
// from the image's repository.
func (l *Local) Inline(ctx context.Context, specs []Spec, solve Solve, epoch *time.Time) (string, error) {
	for _, spec := range specs {
		if spec.Type != TypeInline {
			continue
		}
		recs, err := solve.Records(ctx, false)
		if err != nil {
			return "", err
		}
		cfg, _, err := l.config(ctx, recs, spec.layerOptions(epoch))
		if err != nil {
			return "", err
		}
		raw, err := json.Marshal(cfg)
		if err != nil {
			return "", err
		}
		return string(raw), nil
	}
	return "", nil
}

// configWriter builds a cache config: the layers of the chains of its
// records, each snapshot once, each blob listed once.
type configWriter struct {
	l   *Local
	ex  *exporter.Exporter
	o   exporter.Options
	cfg *config
	// base marks the snapshots of pulled base-image layers.
	base map[string]bool
	// index is each snapshot's index in cfg.Layers.
	index    map[string]int
	blobs    []ocispec.Descriptor
	seenBlob map[digest.Digest]bool
}

// config describes recs and the chains of their snapshots, making the
// layer blobs as o says (or reusing those already made).
func (l *Local) config(ctx context.Context, recs map[digest.Digest]string, o exporter.Options) (*config, []ocispec.Descriptor, error) {
	pulled, err := l.DB.Layers()
	if err != nil {
		return nil, nil, err
	}
	w := &configWriter{
		l: l, o: o,
		ex:    &exporter.Exporter{DB: l.DB, Content: l.Content, Snapshots: l.Snapshots},
		cfg:   &config{Version: 1, Layers: []layer{}, Records: []record{}},
		base:  map[string]bool{},
		index: map[string]int{}, seenBlob: map[digest.Digest]bool{},
	}
	for _, id := range pulled {
		w.base[id] = true
	}
	keys := make([]digest.Digest, 0, len(recs))
	for k := range recs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		top := recs[k]
		if top == "" {
			w.cfg.Records = append(w.cfg.Records, record{Key: k, Layer: -1})
			continue
		}
		if _, ok := w.index[top]; !ok {
			if err := w.addChain(ctx, top); err != nil {
				return nil, nil, err
			}
		}
		w.cfg.Records = append(w.cfg.Records, record{Key: k, Layer: w.index[top]})
	}
	return w.cfg, w.blobs, nil
}

// addChain adds the layers of top's chain that are not in the config yet.
func (w *configWriter) addChain(ctx context.Context, top string) error {
	chain, err := w.l.DB.Chain(top)
	if err != nil {
		return err
	}
	parent := -1
	for i := len(chain) - 1; i >= 0; i-- {
		sn := chain[i]
		if n, ok := w.index[sn.ID]; ok {
			parent = n
			continue
		}
		ly := layer{Parent: parent, Empty: sn.Empty, Base: w.base[sn.ID], Content: sn.Content, Description: sn.Description}
		if !ly.Base && !sn.Created.IsZero() {
			t := sn.Created.UTC()
			ly.Created = &t
		}
		// An empty layer is in the image too, so its blob is exported
		// like any other.
		d, diffID, memo, err := w.ex.CacheLayer(ctx, sn, ly.Base, w.o)
		if err != nil {
			return err
		}
		d.Annotations = nil
		ly.Blob, ly.DiffID, ly.Compression = &d, diffID, memo
		if !w.seenBlob[d.Digest] {
			w.seenBlob[d.Digest] = true
			w.blobs = append(w.blobs, d)
		}
		parent = len(w.cfg.Layers)
		w.index[sn.ID] = parent
		w.cfg.Layers = append(w.cfg.Layers, ly)
	}
	return nil
}

// writeManifest stores the cache config and its manifest in the content
// store.
func (l *Local) writeManifest(ctx context.Context, cfg *config, blobs []ocispec.Descriptor) (ocispec.Descriptor, error) {
	raw, err := json.Marshal(cfg)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	cd, err := l.Content.WriteBytes(ctx, raw)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	m := ocispec.Manifest{
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: ArtifactType,
		Config:       ocispec.Descriptor{MediaType: ConfigMediaType, Digest: cd, Size: int64(len(raw))},
		Layers:       blobs,
	}
	if m.Layers == nil {
		m.Layers = []ocispec.Descriptor{}
	}
	m.SchemaVersion = 2
	rawM, err := json.Marshal(m)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	md, err := l.Content.WriteBytes(ctx, rawM)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	return ocispec.Descriptor{MediaType: m.MediaType, ArtifactType: ArtifactType, Digest: md, Size: int64(len(rawM))}, nil
}

// writeLayout writes the cache manifest and its blobs into the OCI layout
// directory dir, as its only image (tag "latest"); blobs already there
// are kept. Each file is written beside its place and renamed into it.
func (l *Local) writeLayout(dir string, manifest ocispec.Descriptor, blobs []ocispec.Descriptor) error {
	raw, err := l.Content.ReadAll(manifest.Digest)
	if err != nil {
		return err
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		return err
	}
	sink := archive.DirSink(dir)
	for _, d := range append([]ocispec.Descriptor{manifest, m.Config}, blobs...) {
		p := "blobs/sha256/" + d.Digest.Encoded()
		if _, err := os.Stat(filepath.Join(dir, filepath.FromSlash(p))); err == nil {
			continue
		}
		if err := l.copyBlob(sink, p, d); err != nil {
			return fmt.Errorf("writing cache blob %s: %w", filepath.Join(dir, p), err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, ocispec.ImageLayoutFile), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		return err
	}
	desc := manifest
	desc.Annotations = map[string]string{ocispec.AnnotationRefName: "latest"}
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{desc}}
	idx.SchemaVersion = 2
	rawIdx, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	if err := sink.File("index.json", int64(len(rawIdx)), bytes.NewReader(rawIdx)); err != nil {
		return fmt.Errorf("writing cache index %s: %w", filepath.Join(dir, "index.json"), err)
	}
	return nil
}

// copyBlob copies blob d of the content store to path p of sink.
func (l *Local) copyBlob(sink archive.Sink, p string, d ocispec.Descriptor) error {
	rc, err := l.Content.Open(d.Digest)
	if err != nil {
		return err
	}
	defer rc.Close()
	return sink.File(p, d.Size, rc)
}
