package remote

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// indexError is loadSource's answer for a manifest that is an image index:
// a multi-platform image, each of whose images may carry an inline cache.
type indexError struct{ manifests []ocispec.Descriptor }

func (e *indexError) Error() string {
	return "an image index, not a cache manifest (point ref= at a single manifest)"
}

// indexOrError is the error for a manifest without a config: an
// *indexError when it lists manifests.
func indexOrError(raw []byte) error {
	var idx ocispec.Index
	if json.Unmarshal(raw, &idx) == nil && len(idx.Manifests) > 0 {
		return &indexError{manifests: idx.Manifests}
	}
	return errors.New("not a cache manifest")
}

// loadSources loads spec; a registry image index (of a build of several
// platforms with --cache-to type=inline) is loaded as the inline caches of
// its images, skipping images without one (attestation manifests).
func (l *Local) loadSources(ctx context.Context, spec Spec) ([]*imported, error) {
	src, err := l.loadSource(ctx, spec)
	var ie *indexError
	if err == nil || spec.Type != TypeRegistry || !errors.As(err, &ie) {
		return []*imported{src}, err
	}
	ref, err := l.Registries.ParseReference(spec.Ref)
	if err != nil {
		return nil, err
	}
	var out []*imported
	var errs []error
	for _, d := range ie.manifests {
		one := spec
		one.Ref = ref.Context().Digest(d.Digest.String()).String()
		src, err := l.loadSource(ctx, one)
		if err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", d.Digest, err))
			continue
		}
		out = append(out, src)
	}
	if len(out) == 0 {
		return nil, errors.Join(append([]error{errors.New("no image of the index has a cache")}, errs...)...)
	}
	return out, nil
}
