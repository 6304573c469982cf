package remote

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"github.com/builder-dev/builder/cache"
	"github.com/builder-dev/builder/cache/remote/mountcache"
	"github.com/builder-dev/builder/exporter"
	"github.com/builder-dev/builder/solver"
	"github.com/builder-dev/builder/source"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
)

// Import puts the caches of specs behind inner, tried in order: a key that
// only they know is made local when the solver looks it up, by fetching
// and unpacking the blobs of its chain that are missing. A cache that
// cannot be read (the first build of a branch) is a warning; a spec that
// is not valid for an import is an error. Without any readable cache,
// inner is returned as it is.
func (l *Local) Import(ctx context.Context, specs []Spec, inner solver.Cache) (solver.Cache, error) {
	var sources []*imported
	for _, spec := range specs {
		if err := spec.check(false); err != nil {
			return nil, fmt.Errorf("--cache-from: %w", err)
		}
		srcs, err := l.loadSources(ctx, spec)
		if err != nil {
			l.warn(fmt.Sprintf("--cache-from type=%s: %v (building without it)", spec.Type, err))
			continue
		}
		sources = append(sources, srcs...)
	}
	if len(sources) == 0 {
		return inner, nil
	}
	return &importCache{Cache: inner, l: l, sources: sources}, nil
}

// imported is an imported cache: its config, read when the build starts,
// and a way to fetch its blobs, used only for the results a build actually
// needs.
type imported struct {
	name string
	cfg  config
	// fetch makes sure blob d is in the content store.
	fetch func(ctx context.Context, d ocispec.Descriptor) error
	recs  map[digest.Digest]int
	// mounts are the cache mounts it holds, by key.
	mounts map[string]*mountcache.Entry
}

// loadSource reads the cache manifest and config of spec.
func (l *Local) loadSource(ctx context.Context, spec Spec) (*imported, error) {
	var readManifest func() ([]byte, error)
	var fetch func(ctx context.Context, d ocispec.Descriptor) error
	switch spec.Type {
	case TypeRegistry:
		ref, err := l.Registries.ParseReference(spec.Ref)
		if err != nil {
			return nil, err
		}
		readManifest = func() ([]byte, error) { return l.Registries.FetchManifest(ctx, ref) }
		fetch = func(ctx context.Context, d ocispec.Descriptor) error {
			return l.Registries.FetchBlob(ctx, ref, d)
		}
	case TypeLocal:
		readManifest = func() ([]byte, error) { return readLayoutManifest(spec.Dir, spec.Digest) }
		fetch = func(ctx context.Context, d ocispec.Descriptor) error {
			return l.fetchLayoutBlob(ctx, spec.Dir, d)
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
		return nil, indexOrError(raw)
	}
	if err := fetch(ctx, m.Config); err != nil {
		return nil, err
	}
	rawCfg, err := l.Content.ReadAll(m.Config.Digest)
	if err != nil {
		return nil, err
	}
	src := &imported{name: string(spec.Type) + " " + spec.Ref + spec.Dir, fetch: fetch}
	if src.cfg, err = parseConfig(m.Config.MediaType, rawCfg); err != nil {
		return nil, fmt.Errorf("%s: %w", src.name, err)
	}
	if src.recs, err = src.cfg.check(); err != nil {
		return nil, err
	}
	if src.mounts, err = mountcache.Check(src.cfg.CacheMounts); err != nil {
		return nil, err
	}
	return src, nil
}

// readLayoutManifest reads the manifest want of the OCI layout directory
// dir, or the last one its index.json lists.
func readLayoutManifest(dir string, want digest.Digest) ([]byte, error) {
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

// fetchLayoutBlob copies blob d of the OCI layout directory dir into the
// content store, which checks its digest and size.
func (l *Local) fetchLayoutBlob(ctx context.Context, dir string, d ocispec.Descriptor) error {
	if l.Content.Exists(d.Digest) {
		return nil
	}
	f, err := os.Open(filepath.Join(dir, "blobs", d.Digest.Algorithm().String(), d.Digest.Encoded()))
	if err != nil {
		return err
	}
	defer f.Close()
	return l.Content.WriteBlobSized(ctx, f, d.Digest, d.Size)
}

// importCache is the solver's cache with imported caches behind it.
type importCache struct {
	solver.Cache
	l       *Local
	sources []*imported

	mu sync.Mutex
	// made are the snapshots made of each source's layers.
	made map[*imported]map[int]string
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
			c.l.warn(fmt.Sprintf("using the imported cache (%s): %v", src.name, err))
			continue
		}
		if err := c.l.DB.Record(key, cache.Result{Snapshot: id, Created: time.Now().UTC()}); err != nil {
			return solver.Result{}, false, err
		}
		return c.Cache.Lookup(ctx, key)
	}
	return solver.Result{}, false, nil
}

// materialize makes the chain whose top is layer idx of src local and
// returns its top snapshot.
func (c *importCache) materialize(ctx context.Context, src *imported, idx int) (string, error) {
	if idx < 0 {
		return "", nil
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.made == nil {
		c.made = map[*imported]map[int]string{}
	}
	made := c.made[src]
	if made == nil {
		made = map[int]string{}
		c.made[src] = made
	}
	chain := src.cfg.chain(idx)
	chainIDs := baseChainIDs(src.cfg.Layers, chain)
	have := c.present(ctx, src.cfg.Layers, chain, chainIDs, made)
	if err := fetchMissing(ctx, src, chain, have); err != nil {
		return "", err
	}
	parent := ""
	for j, i := range chain {
		if have[j] != "" {
			parent = have[j]
			continue
		}
		var chainID digest.Digest
		if j < len(chainIDs) {
			chainID = chainIDs[j]
		}
		id, err := c.l.unpack(ctx, src.cfg.Layers[i], parent, chainID)
		if err != nil {
			return "", err
		}
		made[i] = id
		parent = id
	}
	return parent, nil
}

// baseChainIDs returns the chain IDs of the base layers at the bottom of
// chain: base layers are known by chain ID, whoever pulled them.
func baseChainIDs(layers []layer, chain []int) []digest.Digest {
	var diffIDs []digest.Digest
	for _, i := range chain {
		if !layers[i].Base {
			break
		}
		diffIDs = append(diffIDs, layers[i].DiffID)
	}
	return source.ChainIDs(diffIDs)
}

// present returns, for each layer of chain, the local snapshot that
// already holds it: one this import made, or a pulled base layer; "" for
// the layers still to unpack.
func (c *importCache) present(ctx context.Context, layers []layer, chain []int, chainIDs []digest.Digest, made map[int]string) []string {
	have := make([]string, len(chain))
	for j, i := range chain {
		if id, ok := made[i]; ok && c.l.Snapshots.Exists(id) {
			have[j] = id
		} else if j < len(chainIDs) {
			if id, err := c.l.DB.LayerSnapshot(ctx, chainIDs[j]); err == nil && c.l.Snapshots.Exists(id) {
				have[j] = id
			}
		}
	}
	return have
}

// fetchMissing fetches the blobs of the layers of chain that are not
// present, a few at a time.
func fetchMissing(ctx context.Context, src *imported, chain []int, have []string) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for j, i := range chain {
		if have[j] == "" && src.cfg.Layers[i].Blob != nil {
			g.Go(func() error { return src.fetch(gctx, *src.cfg.Layers[i].Blob) })
		}
	}
	return g.Wait()
}

// unpack makes a snapshot of l on parent and records it: by chainID for a
// base layer (chainID not empty), else by its id.
func (l *Local) unpack(ctx context.Context, ly layer, parent string, chainID digest.Digest) (string, error) {
	id, err := l.DB.NewSnapshotID(ctx)
	if err != nil {
		return "", err
	}
	now := time.Now().UTC()
	rec := cache.Snapshot{ID: id, Parent: parent, Empty: ly.Empty, Content: ly.Content, Description: ly.Description, Created: now, LastUsed: now}
	if ly.Created != nil && !ly.Base {
		// The exporting step's time, which the image history shows.
		rec.Created = ly.Created.UTC()
	}
	if ly.Empty && ly.Blob == nil {
		// A cache from before empty layers were exported.
		if err := l.Snapshots.Prepare(id); err != nil {
			return "", err
		}
		if err := l.Snapshots.Commit(id); err != nil {
			l.Snapshots.Remove(id)
			return "", err
		}
		rec.DiffID = ly.DiffID
	} else {
		blob := *ly.Blob
		if err := l.Puller.Unpack(ctx, id, blob, ly.DiffID); err != nil {
			l.Snapshots.Remove(id)
			return "", err
		}
		if !strings.Contains(ly.Compression, "@") {
			rec.DiffID = ly.DiffID
		}
		key := ly.Compression
		if key == "" {
			key = exporter.CompressionOf(blob.MediaType)
		}
		blob.Annotations = map[string]string{exporter.AnnotationDiffID: ly.DiffID.String()}
		rec.Blobs = map[string]ocispec.Descriptor{key: blob}
	}
	if chainID != "" {
		err = l.DB.PutLayerSnapshot(chainID, rec)
	} else {
		err = l.DB.PutSnapshot(rec)
	}
	if err != nil {
		l.Snapshots.Remove(id)
		return "", err
	}
	return id, nil
}
