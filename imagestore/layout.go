package imagestore

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"
)

// LayoutContext loads the image of the oci-layout:// build context name
// (value is oci-layout://PATH or oci-layout://PATH@sha256:...) into the
// store and returns the docker-image:// reference a build resolves it by.
func (s *Store) LayoutContext(ctx context.Context, name, value string) (string, error) {
	dir, want, _ := strings.Cut(strings.TrimPrefix(value, "oci-layout://"), "@")
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(abs, "index.json")); err != nil {
		return "", fmt.Errorf("--build-context %s=%s: not an OCI image layout (no index.json)", name, value)
	}
	images, err := s.LoadLayout(ctx, abs)
	if err != nil {
		return "", fmt.Errorf("--build-context %s=%s: %w", name, value, err)
	}
	for _, img := range images {
		if want != "" && img.Manifest.Digest.String() != want {
			continue
		}
		// A name that says where it came from, in the local store only.
		local := "builder-context/" + strings.ToLower(name) + ":" + img.Manifest.Digest.Encoded()[:12]
		if err := s.Tag(img.Name, local); err != nil {
			return "", err
		}
		return "docker-image://" + local, nil
	}
	if want != "" {
		if _, err := digest.Parse(want); err != nil {
			return "", fmt.Errorf("--build-context %s=%s: %q is not a digest", name, value, want)
		}
		return "", fmt.Errorf("--build-context %s=%s: the layout has no image %s", name, value, want)
	}
	return "", fmt.Errorf("--build-context %s=%s: the layout has no image for this platform", name, value)
}
