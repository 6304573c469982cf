package remote

import (
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/builder-dev/builder/cache/remote/mountcache"
	"github.com/builder-dev/builder/exporter"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// The exported cache (docs/cache-format.md): an OCI image manifest whose
// config is a config of this media type and whose layers are the layer
// blobs the config's layers name.
const (
	ConfigMediaType = "application/vnd.builder.cache.config.v1+json"
	// ArtifactType is the manifest's artifactType.
	ArtifactType = "application/vnd.builder.cache.v1"
)

// config lists cache keys and the snapshot chains they resolved to.
type config struct {
	// Version is 1.
	Version int `json:"version"`
	// Layers are the snapshots of every chain, each after its parent.
	Layers []layer `json:"layers"`
	// Records are the cache keys, each with the top of its chain.
	Records []record `json:"records"`
	// CacheMounts are RUN --mount=type=cache directories
	// (cache-mounts=true). Importers that predate the field ignore it.
	CacheMounts []mountcache.Entry `json:"cacheMounts,omitempty"`
}

// layer is one snapshot of a chain.
type layer struct {
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

// record is one cache key.
type record struct {
	Key digest.Digest `json:"key"`
	// Layer indexes Layers: the top of the result's chain; -1 for the
	// empty tree.
	Layer int `json:"layer"`
}

// parseConfig reads a cache config blob: a cache config proper, or an
// image config with an inline cache (--cache-to type=inline) in its
// exporter.InlineCacheField.
func parseConfig(mediaType string, raw []byte) (config, error) {
	var cfg config
	if mediaType == ConfigMediaType {
		if err := json.Unmarshal(raw, &cfg); err != nil {
			return cfg, fmt.Errorf("cache config: %w", err)
		}
		return cfg, nil
	}
	var img map[string]json.RawMessage
	if err := json.Unmarshal(raw, &img); err != nil {
		return cfg, fmt.Errorf("image config: %w", err)
	}
	inline, ok := img[exporter.InlineCacheField]
	if !ok {
		return cfg, errors.New("neither a cache manifest nor an image with an inline cache")
	}
	if err := json.Unmarshal(inline, &cfg); err != nil {
		return cfg, fmt.Errorf("inline cache config: %w", err)
	}
	return cfg, nil
}

// check checks the config's version and indexes, and returns the layer of
// each record's key.
func (c *config) check() (map[digest.Digest]int, error) {
	if c.Version != 1 {
		return nil, fmt.Errorf("cache config version %d is not supported (want 1)", c.Version)
	}
	for i, l := range c.Layers {
		if l.Parent < -1 || l.Parent >= i {
			return nil, fmt.Errorf("cache config: layer %d has parent %d (parents come first)", i, l.Parent)
		}
		if l.Parent >= 0 && l.Base && !c.Layers[l.Parent].Base {
			return nil, fmt.Errorf("cache config: base layer %d above a built one", i)
		}
		if !l.Empty && (l.Blob == nil || l.DiffID == "") {
			return nil, fmt.Errorf("cache config: layer %d has no blob", i)
		}
	}
	recs := map[digest.Digest]int{}
	for _, r := range c.Records {
		if r.Layer < -1 || r.Layer >= len(c.Layers) {
			return nil, fmt.Errorf("cache config: record %s names layer %d of %d", r.Key, r.Layer, len(c.Layers))
		}
		recs[r.Key] = r.Layer
	}
	return recs, nil
}

// chain returns the layers of the chain whose top is layer top, bottom
// first. The config must have passed check.
func (c *config) chain(top int) []int {
	var chain []int
	for i := top; i >= 0; i = c.Layers[i].Parent {
		chain = append(chain, i)
	}
	slices.Reverse(chain)
	return chain
}
