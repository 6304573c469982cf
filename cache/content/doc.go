package content

import (
	"encoding/json"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Doc is what an image manifest or an index names, read from its JSON: a
// manifest's config and layers, an index's manifests.
type Doc struct {
	MediaType string               `json:"mediaType"`
	Config    *ocispec.Descriptor  `json:"config"`
	Layers    []ocispec.Descriptor `json:"layers"`
	Manifests []ocispec.Descriptor `json:"manifests"`
}

// ParseDoc reads raw, a manifest or an index.
func ParseDoc(raw []byte) (Doc, error) {
	var d Doc
	err := json.Unmarshal(raw, &d)
	return d, err
}

// Blobs lists the blobs of an image manifest: config first, then layers.
func (d Doc) Blobs() []ocispec.Descriptor {
	out := make([]ocispec.Descriptor, 0, 1+len(d.Layers))
	if d.Config != nil {
		out = append(out, *d.Config)
	}
	return append(out, d.Layers...)
}
