package imagestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/builder-dev/builder/cache"
	"github.com/builder-dev/builder/cache/content"
	"github.com/builder-dev/builder/exporter"
	"github.com/builder-dev/builder/exporter/archive"
	"github.com/builder-dev/builder/source"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Store is the local image store of an open state directory.
type Store struct {
	DB      *cache.DB
	Content *content.Store
	// Registries parse names as the registries they point to see them.
	Registries *source.Registries
	// Puller unpacks the layers of loaded images into snapshots.
	Puller *source.Puller
	// Platform is the platform whose image Load takes from an index.
	Platform ocispec.Platform
}

// Image finds a named image.
func (s *Store) Image(name string) (cache.Image, error) {
	img, err := s.DB.Image(Normalise(name))
	if errors.Is(err, cache.ErrNotFound) {
		return img, fmt.Errorf("image %s is not in the local store (see `builder images`)", name)
	}
	return img, err
}

// Tag gives the image named src the name dst too.
func (s *Store) Tag(src, dst string) error {
	rec, err := s.Image(src)
	if err != nil {
		return err
	}
	rec.Name = Normalise(dst)
	if _, err := s.Registries.ParseReference(rec.Name); err != nil {
		return err
	}
	return s.DB.PutImage(rec)
}

// Remove takes names out of the store. What only they used is freed by the
// next prune or automatic GC.
func (s *Store) Remove(names ...string) error {
	var errs []error
	for _, n := range names {
		if err := s.DB.DeleteImage(Normalise(n)); err != nil {
			if errors.Is(err, cache.ErrNotFound) {
				err = fmt.Errorf("image %s is not in the local store (see `builder images`)", n)
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Push uploads the image named n to the registry its name says, with the
// credentials of kc.
func (s *Store) Push(ctx context.Context, n string, kc authn.Keychain) error {
	rec, err := s.Image(n)
	if err != nil {
		return err
	}
	ref, err := s.Registries.ParseReference(rec.Name)
	if err != nil {
		return err
	}
	if len(rec.Platforms) > 0 {
		return exporter.PushIndex(ctx, s.Content, rec.Manifest, ref, kc, s.DB)
	}
	return exporter.Push(ctx, s.Content, rec.Manifest, ref, kc, s.DB)
}

// Save writes the named images to w as a `docker save` tar (format
// "docker", the default) or an OCI image layout tar ("oci"). A docker tar
// holds one platform: of a multi-platform image, it gets the store
// platform's image; an OCI tar gets the index.
func (s *Store) Save(w io.Writer, format string, names ...string) error {
	var images []archive.Image
	for _, n := range names {
		rec, err := s.Image(n)
		if err != nil {
			return err
		}
		if format != "oci" && len(rec.Platforms) > 0 {
			pi, err := Pick(rec, s.Platform)
			if err != nil {
				return fmt.Errorf("saving %s as a docker archive (one platform; --format oci keeps them all): %w", n, err)
			}
			rec.Manifest = pi.Manifest
		}
		found := false
		for i := range images {
			if images[i].Manifest.Digest == rec.Manifest.Digest {
				images[i].Names = append(images[i].Names, rec.Name)
				found = true
			}
		}
		if !found {
			images = append(images, archive.Image{Manifest: rec.Manifest, Names: []string{rec.Name}})
		}
	}
	switch format {
	case "", "docker":
		return archive.WriteDocker(archive.TarSink(w), s.Content, images)
	case "oci":
		return archive.WriteOCI(archive.TarSink(w), s.Content, images)
	}
	return fmt.Errorf("unknown format %q (want docker or oci)", format)
}

// Local is an image Lookup found in the store.
type Local struct {
	Manifest digest.Digest
	// Config is the image's config as stored.
	Config []byte
}

// Lookup finds the image named ref for platform p with every blob a build
// FROM it needs, for local-first resolution as `docker build` does it. A
// reference by digest is never looked up: it names a registry's image.
func (s *Store) Lookup(ref string, p ocispec.Platform) (Local, bool) {
	if strings.Contains(ref, "@") {
		return Local{}, false
	}
	rec, err := s.DB.Image(Normalise(ref))
	if err != nil {
		return Local{}, false
	}
	pi, err := Pick(rec, p)
	if err != nil {
		return Local{}, false
	}
	raw, err := s.Content.ReadAll(pi.Manifest.Digest)
	if err != nil {
		return Local{}, false
	}
	var m ocispec.Manifest
	if json.Unmarshal(raw, &m) != nil || m.Config.Digest == "" {
		return Local{}, false
	}
	for _, l := range m.Layers {
		if !s.Content.Exists(l.Digest) {
			return Local{}, false
		}
	}
	rawConfig, err := s.Content.ReadAll(m.Config.Digest)
	if err != nil {
		return Local{}, false
	}
	var img ocispec.Image
	if json.Unmarshal(rawConfig, &img) != nil {
		return Local{}, false
	}
	if (img.OS != "" && img.OS != p.OS) || (img.Architecture != "" && img.Architecture != p.Architecture) {
		return Local{}, false
	}
	return Local{Manifest: pi.Manifest.Digest, Config: rawConfig}, true
}
