package source

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/builder-dev/builder/cache"
	"github.com/builder-dev/builder/internal/blobstream"
	"github.com/builder-dev/builder/snapshot"
	"github.com/builder-dev/builder/source/unpack"
	"github.com/docker/go-units"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
)

// Puller unpacks images into snapshots, each layer once: a layer is named by
// its chain ID, so images sharing a base share its snapshots.
type Puller struct {
	Registries *Registries
	DB         *cache.DB
	Snapshots  snapshot.Snapshotter
}

// Pull makes sure every layer of the resolved image is unpacked and returns
// the top snapshot ("" for an image without layers).
func (p *Puller) Pull(ctx context.Context, img *Resolved) (string, error) {
	return p.PullLog(ctx, img, nil)
}

// PullLog is Pull that writes a line per layer fetched and unpacked to log:
// its size, time and rate.
func (p *Puller) PullLog(ctx context.Context, img *Resolved, log io.Writer) (string, error) {
	var cfg ocispec.Image
	if err := json.Unmarshal(img.Config, &cfg); err != nil {
		return "", fmt.Errorf("image %s: config: %w", img.Ref, err)
	}
	layers := img.Manifest.Layers
	if len(layers) != len(cfg.RootFS.DiffIDs) {
		return "", fmt.Errorf("image %s: manifest has %d layers but config lists %d diff_ids", img.Ref, len(layers), len(cfg.RootFS.DiffIDs))
	}
	chain := chainIDs(cfg.RootFS.DiffIDs)
	parent, have := p.unpackedPrefix(ctx, chain, len(layers))
	if have == len(layers) {
		return parent, nil
	}
	ids, err := p.fetchLayers(ctx, img, layers[have:], cfg.RootFS.DiffIDs[have:], parent, log)
	if err != nil {
		return "", err
	}
	for i, desc := range layers[have:] {
		rec := cache.Snapshot{
			ID: ids[i], Parent: parent, DiffID: cfg.RootFS.DiffIDs[have+i],
			Blobs:       map[string]ocispec.Descriptor{unpack.Compression(desc.MediaType): desc},
			Description: fmt.Sprintf("layer %d of %s", have+i+1, img.Ref),
			Created:     time.Now().UTC(),
		}
		if empty, err := p.Snapshots.IsEmpty(ids[i]); err == nil && empty {
			rec.Empty = true
		}
		if err := p.DB.PutLayerSnapshot(chain[have+i], rec); err != nil {
			return "", err
		}
		parent = ids[i]
	}
	return parent, nil
}

// unpackedPrefix finds the longest prefix of the n layers of chain already
// unpacked: its top snapshot and its length.
func (p *Puller) unpackedPrefix(ctx context.Context, chain []digest.Digest, n int) (parent string, have int) {
	for i := range n {
		id, err := p.DB.LayerSnapshot(ctx, chain[i])
		if err != nil || !p.Snapshots.Exists(id) {
			break
		}
		parent, have = id, i+1
	}
	return parent, have
}

// fetchLayers fetches and unpacks the layers todo (above parent) in
// parallel, each into a new snapshot, and returns their ids; the caller
// records them bottom-up once all are complete. On an error no snapshot
// is left.
func (p *Puller) fetchLayers(ctx context.Context, img *Resolved, todo []ocispec.Descriptor, diffIDs []digest.Digest, parent string, log io.Writer) ([]string, error) {
	ids := make([]string, len(todo))
	implicit := make([][]string, len(todo))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for i, desc := range todo {
		id, err := p.DB.NewSnapshotID(ctx)
		if err != nil {
			g.Wait()
			p.removeSnapshots(ids[:i])
			return nil, err
		}
		ids[i] = id
		diffID := diffIDs[i]
		g.Go(func() error {
			start := time.Now()
			dirs, fetched, err := p.fetchUnpack(gctx, img.Ref, id, desc, diffID)
			if err != nil {
				return err
			}
			implicit[i] = dirs
			if log != nil {
				fmt.Fprintf(log, "layer %s: %s fetched in %.2fs (%s/s), unpacked %.2fs after\n", desc.Digest.Encoded()[:12],
					units.HumanSize(float64(desc.Size)), fetched.Seconds(), units.HumanSize(float64(desc.Size)/max(fetched.Seconds(), 1e-3)), (time.Since(start) - fetched).Seconds())
			}
			return nil
		})
	}
	err := g.Wait()
	if err == nil {
		err = p.inheritImplicitDirs(parent, ids, implicit)
	}
	if err != nil {
		p.removeSnapshots(ids)
		return nil, fmt.Errorf("pulling %s: %w", img.Ref, err)
	}
	return ids, nil
}

func (p *Puller) removeSnapshots(ids []string) {
	for _, id := range ids {
		p.Snapshots.Remove(id)
	}
}

// fetchUnpack fetches layer desc into the content store and unpacks it into
// the new snapshot id as it downloads (see blobstream), or from the store
// if the stream broke; it returns the implied dirs and the download's time.
func (p *Puller) fetchUnpack(ctx context.Context, ref name.Reference, id string, desc ocispec.Descriptor, diffID digest.Digest) ([]string, time.Duration, error) {
	if p.Registries.Content.Exists(desc.Digest) {
		dirs, err := p.unpack(ctx, id, desc, diffID)
		return dirs, 0, err
	}
	pr, pw := io.Pipe()
	stream := blobstream.New(pw)
	start, fetched, took := time.Now(), make(chan error, 1), time.Duration(0)
	go func() {
		err := p.Registries.fetchBlob(ctx, ref, desc, stream)
		took = time.Since(start) // read after <-fetched
		pw.CloseWithError(err)   // nil: end of file, the blob stored and checked
		fetched <- err
	}()
	dirs, err := unpack.Layer(ctx, p.Snapshots, id, pr, desc, diffID)
	pr.CloseWithError(errors.New("unpacking ended")) // the download goes on
	ferr := <-fetched
	if ferr != nil {
		return nil, took, ferr // the caller removes the snapshot
	}
	if err != nil && !stream.Complete(desc.Size) {
		// The stream broke (a restarted download); the stored blob is whole.
		p.Snapshots.Remove(id)
		dirs, err = p.unpack(ctx, id, desc, diffID)
	}
	return dirs, took, err
}

// unpack writes layer desc from the content store into a new snapshot,
// checking its uncompressed digest. It returns the directories the layer
// implied without listing them (see inheritImplicitDirs).
func (p *Puller) unpack(ctx context.Context, id string, desc ocispec.Descriptor, diffID digest.Digest) ([]string, error) {
	rc, err := p.Registries.Content.Open(desc.Digest)
	if err == nil {
		defer rc.Close()
		return unpack.Layer(ctx, p.Snapshots, id, rc, desc, diffID)
	}
	return nil, err
}

// chainIDs computes the OCI chain ID of every layer prefix.
func chainIDs(diffIDs []digest.Digest) []digest.Digest {
	out := make([]digest.Digest, len(diffIDs))
	for i, d := range diffIDs {
		if i == 0 {
			out[i] = d
			continue
		}
		out[i] = digest.FromString(out[i-1].String() + " " + d.String())
	}
	return out
}
