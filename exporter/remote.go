package exporter

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/builder-dev/builder/cache/content"
	"github.com/builder-dev/builder/source"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// storeImage is a v1.Image whose blobs are read from the content store.
type storeImage struct {
	store    *content.Store
	manifest []byte
	config   []byte
	parsed   ocispec.Manifest
}

// V1Image returns the image named by manifest as a go-containerregistry
// image, backed by the content store.
func V1Image(store *content.Store, manifest ocispec.Descriptor) (v1.Image, error) {
	raw, err := store.ReadAll(manifest.Digest)
	if err != nil {
		return nil, err
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("manifest %s: %w", manifest.Digest, err)
	}
	cfg, err := store.ReadAll(m.Config.Digest)
	if err != nil {
		return nil, err
	}
	return partial.CompressedToImage(&storeImage{store: store, manifest: raw, config: cfg, parsed: m})
}

func (i *storeImage) RawConfigFile() ([]byte, error) { return i.config, nil }
func (i *storeImage) MediaType() (types.MediaType, error) {
	return types.MediaType(i.parsed.MediaType), nil
}
func (i *storeImage) RawManifest() ([]byte, error) { return i.manifest, nil }

func (i *storeImage) LayerByDigest(h v1.Hash) (partial.CompressedLayer, error) {
	if h.String() == i.parsed.Config.Digest.String() {
		return &storeBlob{store: i.store, desc: i.parsed.Config}, nil
	}
	for _, l := range i.parsed.Layers {
		if l.Digest.String() == h.String() {
			return &storeBlob{store: i.store, desc: l}, nil
		}
	}
	return nil, fmt.Errorf("blob %s is not part of this image", h)
}

type storeBlob struct {
	store *content.Store
	desc  ocispec.Descriptor
}

func (b *storeBlob) Digest() (v1.Hash, error)           { return v1.NewHash(b.desc.Digest.String()) }
func (b *storeBlob) Compressed() (io.ReadCloser, error) { return b.store.Open(b.desc.Digest) }
func (b *storeBlob) Size() (int64, error)               { return b.desc.Size, nil }
func (b *storeBlob) MediaType() (types.MediaType, error) {
	return types.MediaType(b.desc.MediaType), nil
}

// BlobSources says which repository a blob was fetched from.
type BlobSources interface {
	BlobSource(d digest.Digest) (repository string, ok bool)
}

// Push uploads the image to ref with the credentials kc gives. Blobs the
// registry has are not sent again, and blobs that sources says came from
// another repository of the same registry are mounted from there rather
// than uploaded.
func Push(ctx context.Context, store *content.Store, manifest ocispec.Descriptor, ref name.Reference, kc authn.Keychain, sources BlobSources) error {
	if kc == nil {
		// The caller picks the credentials; none at all is a bug, not
		// a reason to push anonymously.
		return fmt.Errorf("pushing %s: no keychain given", ref)
	}
	img, err := V1Image(store, manifest)
	if err != nil {
		return err
	}
	if sources != nil {
		img = &mountImage{Image: img, sources: sources}
	}
	opts := append(source.DefaultRetry.RemoteOptions(ctx, kc), remote.WithJobs(4))
	if err := remote.Write(ref, img, opts...); err != nil {
		if ctx.Err() != nil {
			return err
		}
		return fmt.Errorf("pushing %s: %w", ref, source.RegistryError(ref.Context().RegistryStr(), err))
	}
	return nil
}

// mountImage offers go-containerregistry the layers it knows the source
// repository of as mountable.
type mountImage struct {
	v1.Image
	sources BlobSources
}

func (m *mountImage) Layers() ([]v1.Layer, error) {
	ls, err := m.Image.Layers()
	if err != nil {
		return nil, err
	}
	out := make([]v1.Layer, len(ls))
	for i, l := range ls {
		out[i] = m.mountable(l)
	}
	return out, nil
}

func (m *mountImage) LayerByDigest(h v1.Hash) (v1.Layer, error) {
	l, err := m.Image.LayerByDigest(h)
	if err != nil {
		return nil, err
	}
	return m.mountable(l), nil
}

func (m *mountImage) mountable(l v1.Layer) v1.Layer {
	h, err := l.Digest()
	if err != nil {
		return l
	}
	repo, ok := m.sources.BlobSource(digest.Digest(h.String()))
	if !ok {
		return l
	}
	r, err := name.NewRepository(repo, name.WeakValidation)
	if err != nil {
		return l
	}
	return &remote.MountableLayer{Layer: l, Reference: r.Digest(h.String())}
}

// PushIndex uploads an image index of the content store to ref: each
// manifest it lists (images, attestation manifests) by digest, then the
// index under ref.
func PushIndex(ctx context.Context, store *content.Store, index ocispec.Descriptor, ref name.Reference, kc authn.Keychain, sources BlobSources) error {
	raw, err := store.ReadAll(index.Digest)
	if err != nil {
		return err
	}
	var idx ocispec.Index
	if err := json.Unmarshal(raw, &idx); err != nil {
		return fmt.Errorf("index %s: %w", index.Digest, err)
	}
	for _, m := range idx.Manifests {
		if err := Push(ctx, store, m, ref.Context().Digest(m.Digest.String()), kc, sources); err != nil {
			return err
		}
	}
	if err := remote.Put(ref, rawManifest{raw: raw, mediaType: types.MediaType(index.MediaType)}, source.DefaultRetry.RemoteOptions(ctx, kc)...); err != nil {
		if ctx.Err() != nil {
			return err
		}
		return fmt.Errorf("pushing index %s: %w", ref, source.RegistryError(ref.Context().RegistryStr(), err))
	}
	return nil
}

// rawManifest is an index as go-containerregistry puts it.
type rawManifest struct {
	raw       []byte
	mediaType types.MediaType
}

func (r rawManifest) RawManifest() ([]byte, error)        { return r.raw, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return r.mediaType, nil }
