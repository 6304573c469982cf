package build

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/builder-dev/builder/cache"
	"github.com/builder-dev/builder/exporter"
	"github.com/builder-dev/builder/solver"
	"github.com/builder-dev/builder/source"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
)

// cacheSource is an imported cache: its config, read when the build
// starts, and a way to fetch its blobs, used only for the results a build
// actually needs.
type cacheSource struct {
	name string
	cfg  cacheConfig
	// fetch makes sure blob d is in the content store.
	fetch func(ctx context.Context, d ocispec.Descriptor) error
	recs  map[digest.Digest]int
}

// loadCacheSources reads the cache config of every --cache-from. A cache
// that is not there yet (the first build of a branch) is a warning.
func (s *State) loadCacheSources(ctx context.Context, opt Options) ([]*cacheSource, error) {
	var out []*cacheSource
	for _, spec := range opt.CacheFrom {
		if err := spec.check(false); err != nil {
			return nil, fmt.Errorf("--cache-from: %w", err)
		}
		src, err := s.loadCacheSource(ctx, spec)
		if err != nil {
			if opt.Warn != nil {
				opt.Warn(fmt.Sprintf("--cache-from type=%s: %v (building without it)", spec.Type, err))
			}
			continue
		}
		out = append(out, src)
	}
	return out, nil
}

func (s *State) loadCacheSource(ctx context.Context, spec CacheSpec) (*cacheSource, error) {
	var readManifest func() ([]byte, error)
	var fetch func(ctx context.Context, d ocispec.Descriptor) error
	switch spec.Type {
	case "registry":
		ref, err := s.Registries.ParseReference(spec.Attrs["ref"])
		if err != nil {
			return nil, err
		}
		readManifest = func() ([]byte, error) { return s.Registries.FetchManifest(ctx, ref) }
		fetch = func(ctx context.Context, d ocispec.Descriptor) error {
			return s.Registries.FetchBlob(ctx, ref, d)
		}
	case "local":
		dir := spec.Attrs["src"]
		fetch = func(ctx context.Context, d ocispec.Descriptor) error {
			if s.Content.Exists(d.Digest) {
				return nil
			}
			f, err := os.Open(filepath.Join(dir, "blobs", d.Digest.Algorithm().String(), d.Digest.Encoded()))
			if err != nil {
				return err
			}
			defer f.Close()
			return s.Content.WriteBlobSized(ctx, f, d.Digest, d.Size)
		}
		readManifest = func() ([]byte, error) {
			want := digest.Digest(spec.Attrs["digest"])
			if want == "" {
				raw, err := os.ReadFile(filepath.Join(dir, "index.json"))
				if err != nil {
					return nil, err
				}
				var idx ocispec.Index
				if err := json.Unmarshal(raw, &idx); err != nil {
					return nil, fmt.Errorf("%s/index.json: %w", dir, err)
				}
				if len(idx.Manifests) == 0 {
					return nil, fmt.Errorf("%s/index.json lists no manifest", dir)
				}
				want = idx.Manifests[len(idx.Manifests)-1].Digest
			}
			if err := want.Validate(); err != nil {
				return nil, err
			}
			return os.ReadFile(filepath.Join(dir, "blobs", want.Algorithm().String(), want.Encoded()))
		}
	default:
		return nil, fmt.Errorf("cache type %q cannot be imported", spec.Type)
	}
	raw, err := readManifest()
	if err != nil {
		return nil, err
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("cache manifest: %w", err)
	}
	if m.Config.Digest == "" {
		return nil, errors.New("not a cache manifest (an index? point ref= at a single manifest)")
	}
	if err := fetch(ctx, m.Config); err != nil {
		return nil, err
	}
	rawCfg, err := s.Content.ReadAll(m.Config.Digest)
	if err != nil {
		return nil, err
	}
	src := &cacheSource{name: spec.Type + " " + spec.Attrs["ref"] + spec.Attrs["src"], fetch: fetch}
	if src.cfg, err = parseCacheConfig(m.Config.MediaType, rawCfg); err != nil {
		return nil, fmt.Errorf("%s: %w", src.name, err)
	}
	if err := src.validate(); err != nil {
		return nil, err
	}
	return src, nil
}

// parseCacheConfig reads a cache config blob: a cache config proper, or an
// image config with an inline cache.
func parseCacheConfig(mediaType string, raw []byte) (cacheConfig, error) {
	var cfg cacheConfig
	if mediaType == CacheConfigMediaType {
		if err := json.Unmarshal(raw, &cfg); err != nil {
			return cfg, fmt.Errorf("cache config: %w", err)
		}
		return cfg, nil
	}
	var img map[string]json.RawMessage
	if err := json.Unmarshal(raw, &img); err != nil {
		return cfg, fmt.Errorf("image config: %w", err)
	}
	inline, ok := img[InlineCacheField]
	if !ok {
		return cfg, errors.New("neither a cache manifest nor an image with an inline cache")
	}
	if err := json.Unmarshal(inline, &cfg); err != nil {
		return cfg, fmt.Errorf("inline cache config: %w", err)
	}
	return cfg, nil
}

// chain returns the layers of the chain whose top is layer top, bottom
// first. The config must have passed validate.
func (c *cacheConfig) chain(top int) []int {
	var chain []int
	for i := top; i >= 0; i = c.Layers[i].Parent {
		chain = append(chain, i)
	}
	slices.Reverse(chain)
	return chain
}

// validate checks the config's version and indexes, and indexes its
// records.
func (c *cacheSource) validate() error {
	if c.cfg.Version != 1 {
		return fmt.Errorf("cache config version %d is not supported (want 1)", c.cfg.Version)
	}
	for i, l := range c.cfg.Layers {
		if l.Parent < -1 || l.Parent >= i {
			return fmt.Errorf("cache config: layer %d has parent %d (parents come first)", i, l.Parent)
		}
		if l.Parent >= 0 && l.Base && !c.cfg.Layers[l.Parent].Base {
			return fmt.Errorf("cache config: base layer %d above a built one", i)
		}
		if !l.Empty && (l.Blob == nil || l.DiffID == "") {
			return fmt.Errorf("cache config: layer %d has no blob", i)
		}
	}
	c.recs = map[digest.Digest]int{}
	for _, r := range c.cfg.Records {
		if r.Layer < -1 || r.Layer >= len(c.cfg.Layers) {
			return fmt.Errorf("cache config: record %s names layer %d of %d", r.Key, r.Layer, len(c.cfg.Layers))
		}
		c.recs[r.Key] = r.Layer
	}
	return nil
}

// importCache is the solver's cache with imported caches behind the local
// one: a key only they know is made local when it is looked up, by
// fetching and unpacking the blobs of its chain that are missing.
type importCache struct {
	solver.Cache
	s       *State
	sources []*cacheSource
	warn    func(string)

	mu   sync.Mutex
	made map[*cacheSource]map[int]string
}

func (c *importCache) Lookup(ctx context.Context, key digest.Digest) (solver.Result, bool, error) {
	r, ok, err := c.Cache.Lookup(ctx, key)
	if ok || err != nil {
		return r, ok, err
	}
	for _, src := range c.sources {
		layer, ok := src.recs[key]
		if !ok {
			continue
		}
		id, err := c.materialize(ctx, src, layer)
		if err != nil {
			if ctx.Err() != nil {
				return solver.Result{}, false, ctx.Err()
			}
			if c.warn != nil {
				c.warn(fmt.Sprintf("using the imported cache (%s): %v", src.name, err))
			}
			continue
		}
		if err := c.s.DB.Record(key, cache.Result{Snapshot: id, Created: time.Now().UTC()}); err != nil {
			return solver.Result{}, false, err
		}
		return c.Cache.Lookup(ctx, key)
	}
	return solver.Result{}, false, nil
}

// materialize makes the chain whose top is layer idx of src local and
// returns its top snapshot.
func (c *importCache) materialize(ctx context.Context, src *cacheSource, idx int) (string, error) {
	if idx < 0 {
		return "", nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.made == nil {
		c.made = map[*cacheSource]map[int]string{}
	}
	made := c.made[src]
	if made == nil {
		made = map[int]string{}
		c.made[src] = made
	}
	layers := src.cfg.Layers
	chain := src.cfg.chain(idx)
	// Base layers are known by chain ID, whoever pulled them.
	var diffIDs []digest.Digest
	for _, i := range chain {
		if !layers[i].Base {
			break
		}
		diffIDs = append(diffIDs, layers[i].DiffID)
	}
	chainIDs := source.ChainIDs(diffIDs)
	have := make([]string, len(chain))
	for j, i := range chain {
		if id, ok := made[i]; ok && c.s.Snapshots.Exists(id) {
			have[j] = id
		} else if j < len(chainIDs) {
			if id, err := c.s.DB.LayerSnapshot(chainIDs[j]); err == nil && c.s.Snapshots.Exists(id) {
				have[j] = id
			}
		}
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for j, i := range chain {
		if have[j] == "" && layers[i].Blob != nil {
			g.Go(func() error { return src.fetch(gctx, *layers[i].Blob) })
		}
	}
	if err := g.Wait(); err != nil {
		return "", err
	}
	parent := ""
	for j, i := range chain {
		if have[j] != "" {
			parent = have[j]
			continue
		}
		l := layers[i]
		id, err := c.s.DB.NewSnapshotID()
		if err != nil {
			return "", err
		}
		now := time.Now().UTC()
		rec := cache.Snapshot{ID: id, Parent: parent, Empty: l.Empty, Content: l.Content, Description: l.Description, Created: now, LastUsed: now}
		if l.Created != nil && !l.Base {
			// The exporting step's time, which the image history shows.
			rec.Created = l.Created.UTC()
		}
		if l.Empty && l.Blob == nil {
			// A cache from before empty layers were exported.
			if err := c.s.Snapshots.Prepare(id); err != nil {
				return "", err
			}
			if err := c.s.Snapshots.Commit(id); err != nil {
				c.s.Snapshots.Remove(id)
				return "", err
			}
			rec.DiffID = l.DiffID
		} else {
			blob := *l.Blob
			if err := c.s.worker.Puller.Unpack(ctx, id, blob, l.DiffID); err != nil {
				c.s.Snapshots.Remove(id)
				return "", err
			}
			if !strings.Contains(l.Compression, "@") {
				rec.DiffID = l.DiffID
			}
			key := l.Compression
			if key == "" {
				key = exporter.CompressionOf(blob.MediaType)
			}
			blob.Annotations = map[string]string{exporter.AnnotationDiffID: l.DiffID.String()}
			rec.Blobs = map[string]ocispec.Descriptor{key: blob}
		}
		if j < len(chainIDs) {
			err = c.s.DB.PutLayerSnapshot(chainIDs[j], rec)
		} else {
			err = c.s.DB.PutSnapshot(rec)
		}
		if err != nil {
			c.s.Snapshots.Remove(id)
			return "", err
		}
		made[i] = id
		parent = id
	}
	return parent, nil
}

// useCacheFrom puts the caches of opt.CacheFrom behind the build's cache.
func (s *State) useCacheFrom(ctx context.Context, opt Options, use *buildUse) error {
	if len(opt.CacheFrom) == 0 || opt.NoCache {
		return nil
	}
	sources, err := s.loadCacheSources(ctx, opt)
	if err != nil || len(sources) == 0 {
		return err
	}
	use.Cache = &importCache{Cache: use.Cache, s: s, sources: sources, warn: opt.Warn}
	return nil
}
