package build

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"time"

	"github.com/builder-dev/builder/exporter"
	"github.com/builder-dev/builder/llb"
	"github.com/builder-dev/builder/solver"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// exportCache writes the cache of a finished build to every --cache-to:
// with mode=min the records of the steps whose results are in the image's
// chain (top), with mode=max those of every step of the build.
func (s *State) exportCache(ctx context.Context, opt Options, sv *solver.Solver, root *llb.Vertex, top string, epoch *time.Time) error {
	for _, spec := range opt.CacheTo {
		if err := s.exportCacheTo(ctx, opt, spec, sv, root, top, epoch); err != nil {
			if b, _ := strconv.ParseBool(spec.Attrs["ignore-error"]); b {
				if opt.Warn != nil {
					opt.Warn(fmt.Sprintf("exporting the cache (type=%s): %v", spec.Type, err))
				}
				continue
			}
			return fmt.Errorf("exporting the cache (type=%s): %w", spec.Type, err)
		}
	}
	return nil
}

func (s *State) exportCacheTo(ctx context.Context, opt Options, spec CacheSpec, sv *solver.Solver, root *llb.Vertex, top string, epoch *time.Time) error {
	if err := spec.check(true); err != nil {
		return err
	}
	if spec.Type == "inline" {
		return nil // written into the image config by inlineCache
	}
	recs, err := s.cacheRecords(ctx, sv, root, top, spec.max())
	if err != nil {
		return err
	}
	eo, err := spec.layerOptions(epoch)
	if err != nil {
		return err
	}
	cfg, blobs, err := s.cacheConfig(ctx, recs, eo)
	if err != nil {
		return err
	}
	desc, err := s.writeCacheManifest(ctx, cfg, blobs)
	if err != nil {
		return err
	}
	switch spec.Type {
	case "registry":
		ref, err := s.Registries.ParseReference(spec.Attrs["ref"])
		if err != nil {
			return err
		}
		return exporter.Push(ctx, s.Content, desc, ref, opt.Keychain, s.DB)
	case "local":
		return s.writeCacheLayout(spec.Attrs["dest"], desc, blobs)
	}
	return fmt.Errorf("cache type %q cannot be exported", spec.Type)
}

// cacheRecords returns the cache keys of root's steps that have a usable
// result, with the result's snapshot ("" for the empty tree); unless max,
// only those whose result is part of top's chain.
func (s *State) cacheRecords(ctx context.Context, sv *solver.Solver, root *llb.Vertex, top string, max bool) (map[digest.Digest]string, error) {
	inImage := map[string]bool{}
	if top != "" {
		chain, err := s.DB.Chain(top)
		if err != nil {
			return nil, err
		}
		for _, c := range chain {
			inImage[c.ID] = true
		}
	}
	var vs []*llb.Vertex
	llb.Walk([]*llb.Vertex{root}, func(v *llb.Vertex) error {
		vs = append(vs, v)
		return nil
	})
	recs := map[digest.Digest]string{}
	for _, v := range vs {
		if root == nil {
			break
		}
		key, err := sv.CacheKey(ctx, v)
		if err != nil {
			return nil, err
		}
		r, ok, err := s.worker.Lookup(ctx, key)
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

// cacheConfig describes recs and the chains of their snapshots, making the
// layer blobs as o says (or reusing those already made).
func (s *State) cacheConfig(ctx context.Context, recs map[digest.Digest]string, o exporter.Options) (*cacheConfig, []ocispec.Descriptor, error) {
	pulled, err := s.DB.Layers()
	if err != nil {
		return nil, nil, err
	}
	base := map[string]bool{}
	for _, id := range pulled {
		base[id] = true
	}
	ex := &exporter.Exporter{DB: s.DB, Content: s.Content, Snapshots: s.Snapshots}
	cfg := &cacheConfig{Version: 1, Layers: []cacheLayer{}, Records: []cacheRecord{}}
	index := map[string]int{}
	var blobs []ocispec.Descriptor
	seenBlob := map[digest.Digest]bool{}
	keys := make([]digest.Digest, 0, len(recs))
	for k := range recs {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		top := recs[k]
		if top == "" {
			cfg.Records = append(cfg.Records, cacheRecord{Key: k, Layer: -1})
			continue
		}
		if _, ok := index[top]; !ok {
			chain, err := s.DB.Chain(top)
			if err != nil {
				return nil, nil, err
			}
			parent := -1
			for i := len(chain) - 1; i >= 0; i-- {
				sn := chain[i]
				if n, ok := index[sn.ID]; ok {
					parent = n
					continue
				}
				l := cacheLayer{Parent: parent, Empty: sn.Empty, Base: base[sn.ID], Content: sn.Content, Description: sn.Description}
				if !l.Base && !sn.Created.IsZero() {
					t := sn.Created.UTC()
					l.Created = &t
				}
				// An empty layer is in the image too, so its blob is
				// exported like any other.
				d, diffID, memo, err := ex.CacheLayer(ctx, sn, l.Base, o)
				if err != nil {
					return nil, nil, err
				}
				d.Annotations = nil
				l.Blob, l.DiffID, l.Compression = &d, diffID, memo
				if !seenBlob[d.Digest] {
					seenBlob[d.Digest] = true
					blobs = append(blobs, d)
				}
				parent = len(cfg.Layers)
				index[sn.ID] = parent
				cfg.Layers = append(cfg.Layers, l)
			}
		}
		cfg.Records = append(cfg.Records, cacheRecord{Key: k, Layer: index[top]})
	}
	return cfg, blobs, nil
}

// writeCacheManifest stores the cache config and its manifest in the
// content store.
func (s *State) writeCacheManifest(ctx context.Context, cfg *cacheConfig, blobs []ocispec.Descriptor) (ocispec.Descriptor, error) {
	raw, err := json.Marshal(cfg)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	cd, err := s.Content.WriteBytes(ctx, raw)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	m := ocispec.Manifest{
		MediaType:    ocispec.MediaTypeImageManifest,
		ArtifactType: CacheArtifactType,
		Config:       ocispec.Descriptor{MediaType: CacheConfigMediaType, Digest: cd, Size: int64(len(raw))},
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
	md, err := s.Content.WriteBytes(ctx, rawM)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	return ocispec.Descriptor{MediaType: m.MediaType, ArtifactType: CacheArtifactType, Digest: md, Size: int64(len(rawM))}, nil
}

// writeCacheLayout writes the cache manifest and its blobs into the OCI
// layout directory dir, as its only image (tag "latest"); blobs already
// there are kept.
func (s *State) writeCacheLayout(dir string, manifest ocispec.Descriptor, blobs []ocispec.Descriptor) error {
	raw, err := s.Content.ReadAll(manifest.Digest)
	if err != nil {
		return err
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return err
	}
	blobDir := filepath.Join(dir, "blobs", "sha256")
	if err := os.MkdirAll(blobDir, 0o755); err != nil {
		return err
	}
	for _, d := range append([]digest.Digest{manifest.Digest, m.Config.Digest}, digests(blobs)...) {
		p := filepath.Join(blobDir, d.Encoded())
		if _, err := os.Stat(p); err == nil {
			continue
		}
		err := writeFileAtomic(p, "cache blob", func(w io.Writer) error {
			rc, err := s.Content.Open(d)
			if err != nil {
				return err
			}
			defer rc.Close()
			_, err = io.Copy(w, rc)
			return err
		})
		if err != nil {
			return err
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
	return writeFileAtomic(filepath.Join(dir, "index.json"), "cache index", func(w io.Writer) error {
		_, err := w.Write(rawIdx)
		return err
	})
}

func digests(ds []ocispec.Descriptor) []digest.Digest {
	out := make([]digest.Digest, len(ds))
	for i, d := range ds {
		out[i] = d.Digest
	}
	return out
}

// inlineCache returns the cache config of the image's own layers for the
// first --cache-to type=inline, as JSON, or "" when none is asked for. Its
// layers are the image's: importers fetch them from the image's repository.
func (s *State) inlineCache(ctx context.Context, opt Options, sv *solver.Solver, root *llb.Vertex, top string, epoch *time.Time) (string, error) {
	for _, spec := range opt.CacheTo {
		if spec.Type != "inline" {
			continue
		}
		recs, err := s.cacheRecords(ctx, sv, root, top, false)
		if err != nil {
			return "", err
		}
		eo, err := spec.layerOptions(epoch)
		if err != nil {
			return "", err
		}
		cfg, _, err := s.cacheConfig(ctx, recs, eo)
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
