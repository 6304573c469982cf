// Package resolve answers the frontend's FROM lookups for a build: the
// local image store first, as `docker build` does, then the registry;
// Memo remembers the answers, so that the build checks see the base
// images the build used without asking the registry again.
package resolve

import (
	"context"
	"encoding/json"
	"fmt"
	"sync"

	"github.com/builder-dev/builder/frontend/dockerfile"
	"github.com/builder-dev/builder/imagestore"
	"github.com/builder-dev/builder/source"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// LocalFirst resolves FROM names in the local image store first, as
// `docker build` does, and in their registry otherwise.
type LocalFirst struct {
	Images *imagestore.Store
	Remote *source.Registries
	// RegistryOnly skips the local store (--pull).
	RegistryOnly bool
}

func (r LocalFirst) ResolveImage(ctx context.Context, ref string, p ocispec.Platform) (dockerfile.ResolvedImage, error) {
	if local, ok := r.Images.Lookup(ref, p); ok && !r.RegistryOnly {
		var img dockerfile.Image
		if json.Unmarshal(local.Config, &img) == nil {
			return dockerfile.ResolvedImage{Digest: local.Manifest, Config: img}, nil
		}
	}
	res, err := r.Remote.Resolve(ctx, ref, p)
	if err != nil {
		return dockerfile.ResolvedImage{}, err
	}
	var img dockerfile.Image
	if err := json.Unmarshal(res.Config, &img); err != nil {
		return dockerfile.ResolvedImage{}, fmt.Errorf("image %s: config: %w", ref, err)
	}
	return dockerfile.ResolvedImage{Digest: res.Digest, Config: img}, nil
}

// Memo remembers what it resolved, so that the checks see the base images
// the build resolved without asking the registry again.
type Memo struct {
	inner dockerfile.ImageResolver
	mu    sync.Mutex
	seen  map[string]dockerfile.ResolvedImage
}

// NewMemo remembers what r resolves.
func NewMemo(r dockerfile.ImageResolver) *Memo {
	return &Memo{inner: r, seen: map[string]dockerfile.ResolvedImage{}}
}

func (m *Memo) ResolveImage(ctx context.Context, ref string, p ocispec.Platform) (dockerfile.ResolvedImage, error) {
	key := ref + "\x00" + p.OS + "/" + p.Architecture + "/" + p.Variant
	m.mu.Lock()
	r, ok := m.seen[key]
	m.mu.Unlock()
	if ok {
		return r, nil
	}
	r, err := m.inner.ResolveImage(ctx, ref, p)
	if err != nil {
		return r, err
	}
	m.mu.Lock()
	m.seen[key] = r
	m.mu.Unlock()
	return r, nil
}
