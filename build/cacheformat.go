package build

import (
	"time"

	"github.com/builder-dev/builder/exporter"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// The exported cache (docs/cache-format.md): an OCI image manifest whose
// config is a cacheConfig of this media type and whose layers are the
// layer blobs the cache config's layers name.
const (
	CacheConfigMediaType = "application/vnd.builder.cache.config.v1+json"
	// CacheArtifactType is the manifest's artifactType.
	CacheArtifactType = "application/vnd.builder.cache.v1"
	// InlineCacheField is the image config field that holds an inline
	// cache config (--cache-to type=inline).
	InlineCacheField = exporter.InlineCacheField
)

// cacheConfig lists cache keys and the snapshot chains they resolved to.
type cacheConfig struct {
	// Version is 1.
	Version int `json:"version"`
	// Layers are the snapshots of every chain, each after its parent.
	Layers []cacheLayer `json:"layers"`
	// Records are the cache keys, each with the top of its chain.
	Records []cacheRecord `json:"records"`
}

// cacheLayer is one snapshot of a chain.
type cacheLayer struct {
	// Parent indexes Layers: the snapshot below; -1 for none.
	Parent int `json:"parent"`
	// Empty layers change nothing and have no blob.
	Empty bool `json:"empty,omitempty"`
	// Blob is the layer blob, also listed in the manifest's layers.
	Blob *ocispec.Descriptor `json:"blob,omitempty"`
	// DiffID is the digest of the tar the blob compresses.
	DiffID digest.Digest `json:"diffID,omitempty"`
	// Compression is the blob's key in a snapshot record's Blobs:
	// compression, "-LEVEL", "@SOURCE_DATE_EPOCH".
	Compression string `json:"compression,omitempty"`
	// Content digests the layer's files with times left out.
	Content digest.Digest `json:"content,omitempty"`
	// Base marks a layer of a base image: it is known by its chain ID.
	Base        bool   `json:"base,omitempty"`
	Description string `json:"description,omitempty"`
	// Created is when the step made the layer (not for base layers): an
	// importer's image history gets this time, so its image is the same.
	// Caches written before it existed lack it; the import time is used.
	Created *time.Time `json:"created,omitempty"`
}

// cacheRecord is one cache key.
type cacheRecord struct {
	Key digest.Digest `json:"key"`
	// Layer indexes Layers: the top of the result's chain; -1 for the
	// empty tree.
	Layer int `json:"layer"`
}
