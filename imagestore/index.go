package imagestore

import (
	"encoding/json"
	"fmt"
	"strings"

	"github.com/builder-dev/builder/cache"
	"github.com/builder-dev/builder/cache/content"
	"github.com/builder-dev/builder/cache/gcplan"
	"github.com/builder-dev/builder/platform"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Pick is the image of rec to use for platform p: rec itself when it is
// one image, else its index's image for p, chosen as FROM chooses
// (variant-aware). The error lists the platforms the index has.
func Pick(rec cache.Image, p ocispec.Platform) (cache.PlatformImage, error) {
	if len(rec.Platforms) == 0 {
		return cache.PlatformImage{Manifest: rec.Manifest, Snapshot: rec.Snapshot}, nil
	}
	descs := make([]ocispec.Descriptor, len(rec.Platforms))
	for i, pi := range rec.Platforms {
		descs[i] = pi.Manifest
		descs[i].Platform = &rec.Platforms[i].Platform
	}
	d, err := platform.Select(descs, p)
	if err != nil {
		return cache.PlatformImage{}, fmt.Errorf("image %s: %w", rec.Name, err)
	}
	for _, pi := range rec.Platforms {
		if pi.Manifest.Digest == d.Digest {
			return pi, nil
		}
	}
	return cache.PlatformImage{}, fmt.Errorf("image %s: no platform image %s", rec.Name, d.Digest)
}

// ImageRefs are what the stored image img keeps from the GC, and what du
// counts for it: one ref per platform image (the first with every blob the
// index reaches, so that blobs the platforms share count once).
func ImageRefs(c *content.Store, img cache.Image) []gcplan.ImageRef {
	refs := []gcplan.ImageRef{{Name: img.Name, Snapshot: img.Snapshot, Blobs: reachable(c, img.Manifest.Digest, 0)}}
	for _, pi := range img.Platforms {
		if pi.Snapshot != img.Snapshot {
			refs = append(refs, gcplan.ImageRef{Name: img.Name, Snapshot: pi.Snapshot})
		}
	}
	return refs
}

// reachable is d and the blobs it names: an index's manifests (images and
// attestation manifests), a manifest's config and layers. An unreadable
// document keeps only itself: what it names cannot be known.
func reachable(c *content.Store, d digest.Digest, depth int) []digest.Digest {
	out := []digest.Digest{d}
	raw, err := c.ReadAll(d)
	if err != nil || depth > 3 {
		return out
	}
	doc, err := content.ParseDoc(raw)
	if err != nil {
		return out
	}
	for _, b := range doc.Blobs() {
		out = append(out, b.Digest)
	}
	for _, m := range doc.Manifests {
		out = append(out, reachable(c, m.Digest, depth+1)...)
	}
	return out
}

// platforms is how `builder images` shows what platforms an image is for:
// those of its index, or its config's.
func (s *Store) platforms(img cache.Image) string {
	if len(img.Platforms) > 0 {
		var names []string
		for _, pi := range img.Platforms {
			names = append(names, platform.Format(pi.Platform))
		}
		return strings.Join(names, ",")
	}
	var m ocispec.Manifest
	var cfg ocispec.Image
	raw, err := s.Content.ReadAll(img.Manifest.Digest)
	if err != nil || json.Unmarshal(raw, &m) != nil {
		return "?"
	}
	if raw, err = s.Content.ReadAll(m.Config.Digest); err != nil || json.Unmarshal(raw, &cfg) != nil || cfg.OS == "" {
		return "?"
	}
	return platform.Format(cfg.Platform)
}
