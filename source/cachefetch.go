package source

import (
	"context"

	"github.com/google/go-containerregistry/pkg/name"
)

// FetchManifest returns the raw manifest (or index) ref names, from the
// registry: a tag may have moved since it was last read. It reads at most
// MaxManifestSize bytes.
func (r *Registries) FetchManifest(ctx context.Context, ref name.Reference) ([]byte, error) {
	c, err := r.repoClient(ctx, ref)
	if err != nil {
		return nil, err
	}
	raw, err := c.getManifest(ctx, ref.Identifier())
	if err != nil {
		return nil, registryError("fetching manifest of", ref, err)
	}
	return raw, nil
}
