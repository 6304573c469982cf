package exporter

import (
	"context"
	"encoding/json"
	"fmt"
	"io"

	"github.com/builder-dev/builder/cache/content"
	"github.com/builder-dev/builder/exporter/push"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/partial"
	"github.com/google/go-containerregistry/pkg/v1/types"
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
type BlobSources = push.BlobSources

// Push uploads the image (or index) manifest names to ref with the
// credentials kc gives. Blobs the registry has are not sent again, and
// blobs that sources says came from another repository of the same
// registry are mounted from there rather than uploaded (see package push).
func Push(ctx context.Context, store *content.Store, manifest ocispec.Descriptor, ref name.Reference, kc authn.Keychain, sources BlobSources) error {
	return push.Push(ctx, store, manifest, ref, kc, sources)
}

// PushIndex uploads an image index of the content store to ref: each
// manifest it lists (images, attestation manifests) by digest, then the
// index under ref. It is Push, which tells an index by its content.
func PushIndex(ctx context.Context, store *content.Store, index ocispec.Descriptor, ref name.Reference, kc authn.Keychain, sources BlobSources) error {
	return push.Push(ctx, store, index, ref, kc, sources)
}
