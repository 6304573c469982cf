package source

import (
	"context"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

// FetchManifest returns the raw manifest (or index) ref names, from the
// registry: a tag may have moved since it was last read.
func (r *Registries) FetchManifest(ctx context.Context, ref name.Reference) ([]byte, error) {
	desc, err := remote.Get(ref, r.remoteOptions(ctx)...)
	if err != nil {
		return nil, registryError("fetching manifest of", ref, err)
	}
	return desc.Manifest, nil
}
