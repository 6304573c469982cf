package build

import (
	"context"
	"errors"
	"fmt"
	"maps"

	"github.com/builder-dev/builder/build/export"
	"github.com/builder-dev/builder/build/multiarch"
	"github.com/builder-dev/builder/build/resolve"
	"github.com/builder-dev/builder/build/solved"
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

// attests says whether the build attaches attestations (provenance, an
// SBOM), which go into an index even of one image, as BuildKit puts them.
func (opt Options) attests() bool { return opt.Provenance.Mode != "" || opt.SBOMScanner != "" }

// lowerMore lowers the Dockerfile for every platform of opt.Platforms after
// the first (which lower did), with the same checks.
func (s *State) lowerMore(ctx context.Context, opt Options, fopt dockerfile.Options, resolver *resolve.Memo) ([]platformImage, error) {
	// Attestations go into an index, even of one image, as BuildKit
	// puts them; a docker archive cannot hold one.
	if len(opt.Platforms) > 1 || opt.attests() {
		for _, o := range opt.Outputs {
			if o.Type == output.Docker {
				return nil, errors.New("docker exporter does not support exporting manifest lists, use the oci exporter (several platforms are built, or attestations asked for)")
			}
		}
	}
	if len(opt.Platforms) < 2 {
		return nil, nil
	}
	var out []platformImage
	for _, p := range opt.Platforms[1:] {
		fopt.TargetPlatform = p
		fe, err := dockerfile.Build(ctx, fopt, resolver)
		if err != nil {
			return nil, fmt.Errorf("platform %s: %w", platform.Format(p), err)
		}
		if err := prepareGraph(fe, opt); err != nil {
			return nil, err
		}
		out = append(out, platformImage{platform: p, fe: fe})
	}
	return out, nil
}

// exportPlatforms writes the outputs of a build of several platforms, or
// with attestations (first is the first platform's solve, tops the other
// platforms' results) and exports the cache of every platform: registry
// and local caches get one cache of all their steps, each platform's image
// its own inline cache.
func (s *State) exportPlatforms(ctx context.Context, t *target, eopt export.Options, first solved.Solve, tops []string) (*Result, error) {
	var all multiarch.Solves
	var images []export.Image
	for i := -1; i < len(t.more); i++ {
		d, img := first, export.Image{Platform: t.fopt.TargetPlatform, Root: t.fe.Root, Config: t.fe.Image, Top: first.Top}
		if i >= 0 {
			m := t.more[i]
			d.Root, d.Top = m.fe.Root, tops[i]
			img = export.Image{Platform: m.platform, Root: m.fe.Root, Config: m.fe.Image, Top: tops[i]}
		}
		var err error
		if img.InlineCache, err = s.inlineCache(ctx, t.opt, d); err != nil {
			return nil, err
		}
		all, images = append(all, d), append(images, img)
	}
	out, err := export.Platforms(ctx, s.exportStores(), eopt, images)
	if err != nil {
		return nil, err
	}
	if err := s.exportCache(ctx, t.opt, all, first.Epoch); err != nil {
		return nil, err
	}
	return result(out, t.steps), nil
}
