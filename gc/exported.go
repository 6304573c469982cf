package gc

import (
	"context"
	"fmt"
	"github.com/builder-dev/builder/cache/content"

	"github.com/builder-dev/builder/cache/coord"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Exported leases the built image's manifest (raw), config and layers in
// the build's lease file too: a manifest or config that was in the content
// store already (an earlier identical build) is older than the lease, and
// names no snapshot, so nothing else keeps a prune in another process from
// removing it before the image is named or while it is pushed. The
// exporter wrote them before they were leased, so a prune may have removed
// one meanwhile: the manifest and config are then written again. The blobs
// the manifest names are read from raw, not the store, so all of them are
// leased at once: one hold of the database per image.
func (u *Use) Exported(ctx context.Context, manifest ocispec.Descriptor, raw, config []byte) error {
	rewrite := func() error {
		for _, b := range [][]byte{config, raw} {
			if _, err := u.content.WriteBytes(ctx, b); err != nil {
				return err
			}
		}
		return nil
	}
	m, err := content.ParseDoc(raw)
	if err != nil {
		return fmt.Errorf("reading the manifest of image %s: %w", manifest.Digest, err)
	}
	ds := append(make([]digest.Digest, 0, 2+len(m.Layers)), manifest.Digest)
	for _, b := range m.Blobs() {
		ds = append(ds, b.Digest)
	}
	if err := u.leaseBlobs(ds, rewrite); err != nil {
		return fmt.Errorf("leasing the blobs of image %s: %w", manifest.Digest, err)
	}
	return nil
}

// LeaseTree leases root, an index or a manifest, and every blob under it
// but the manifests in skip (leased already), each before it is read.
// rewrite writes the whole tree again (blobs are named by content, so it
// writes the same ones); it runs when a blob turns out missing once
// leased, a prune having removed it between its write and its lease.
func (u *Use) LeaseTree(ctx context.Context, root digest.Digest, skip map[digest.Digest]bool, rewrite func() error) error {
	todo := []digest.Digest{root}
	for len(todo) > 0 {
		d := todo[0]
		todo = todo[1:]
		if err := u.leaseBlobs([]digest.Digest{d}, rewrite); err != nil {
			return err
		}
		raw, err := u.content.ReadAll(d)
		if err != nil {
			return err
		}
		node, err := content.ParseDoc(raw)
		if err != nil {
			return fmt.Errorf("reading %s: %w", d, err)
		}
		for _, m := range node.Manifests {
			if !skip[m.Digest] {
				todo = append(todo, m.Digest)
			}
		}
		var leaves []digest.Digest
		for _, b := range node.Blobs() {
			leaves = append(leaves, b.Digest)
		}
		if err := u.leaseBlobs(leaves, rewrite); err != nil {
			return err
		}
	}
	return nil
}

// leaseBlobs adds ds to the lease while holding the database, as the
// coord protocol asks, then rewrites them if one is gone.
func (u *Use) leaseBlobs(ds []digest.Digest, rewrite func() error) error {
	if len(ds) == 0 {
		return nil
	}
	u.mu.Lock()
	u.blobs = append(u.blobs, ds...)
	u.mu.Unlock()
	names := make([]string, len(ds))
	for i, d := range ds {
		names[i] = d.String()
	}
	if err := u.db.Hold(func() error { return u.file.Add(coord.KindBlob, names...) }); err != nil {
		return err
	}
	rewritten := false
	for _, d := range ds {
		if u.content.Exists(d) {
			continue
		}
		if !rewritten {
			if err := rewrite(); err != nil {
				return fmt.Errorf("writing blobs a prune removed: %w", err)
			}
			rewritten = true
		}
		if !u.content.Exists(d) {
			return fmt.Errorf("blob %s was removed by a prune before the build leased it", d)
		}
	}
	return nil
}
