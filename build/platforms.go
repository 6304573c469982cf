package build

import (
	"context"
	"errors"
	"fmt"
	"maps"

	"github.com/builder-dev/builder/build/multiarch"
	"github.com/builder-dev/builder/build/resolve"
	"github.com/builder-dev/builder/frontend/dockerfile"
	"github.com/builder-dev/builder/output"
	"github.com/builder-dev/builder/platform"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// targetPlatform is the platform the image is built for.
func (opt Options) targetPlatform() ocispec.Platform {
	if len(opt.Platforms) == 0 {
		return platform.Host()
	}
	return opt.Platforms[0]
}

// addLabels adds the build's --label values to the image config.
func addLabels(fe *dockerfile.Result, labels map[string]string) {
	if len(labels) == 0 {
		return
	}
	if fe.Image.Config.Labels == nil {
		fe.Image.Config.Labels = map[string]string{}
	}
	maps.Copy(fe.Image.Config.Labels, labels)
}

// platformImage is one more platform's lowered graph.
type platformImage struct {
	platform ocispec.Platform
	fe       *dockerfile.Result
}

// lowerMore lowers the Dockerfile for every platform of opt.Platforms after
// the first (which lower did), with the same checks.
func (s *State) lowerMore(ctx context.Context, opt Options, fopt dockerfile.Options) ([]platformImage, error) {
	if len(opt.Platforms) < 2 {
		if opt.Provenance.Mode != "" {
			return nil, errors.New("--provenance: attestations are attached to the image index of a multi-platform build only for now; build with several --platform values")
		}
		return nil, nil
	}
	if len(opt.CacheTo) > 0 {
		return nil, errors.New("--cache-to with several platforms is not implemented yet: build one platform at a time to export its cache")
	}
	for _, o := range opt.Outputs {
		if o.Type == output.Docker {
			return nil, errors.New("docker exporter does not support exporting manifest lists, use the oci exporter (several platforms are built)")
		}
	}
	resolver := resolve.NewMemo(resolve.LocalFirst{Images: s.Images, Remote: s.Registries, RegistryOnly: opt.Pull})
	var out []platformImage
	for _, p := range opt.Platforms[1:] {
		fopt.TargetPlatform = p
		fe, err := dockerfile.Build(ctx, fopt, resolver)
		if err != nil {
			return nil, fmt.Errorf("platform %s: %w", platform.Format(p), err)
		}
		addLabels(fe, opt.Labels)
		if err := checkEntitlements(fe.Root, opt.Allow); err != nil {
			return nil, err
		}
		if err := multiarch.CheckRunnable(fe.Root); err != nil {
			return nil, err
		}
		out = append(out, platformImage{platform: p, fe: fe})
	}
	return out, nil
}
