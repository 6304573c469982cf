package build

import (
	"context"
	"errors"
	"fmt"
	"maps"

	"github.com/builder-dev/builder/build/export"
	"github.com/builder-dev/builder/build/multiarch"
	"github.com/builder-dev/builder/build/resolve"
	"github.com/builder-dev/builder/frontend/dockerfile"
	"github.com/builder-dev/builder/gc"
	"github.com/builder-dev/builder/output"
	"github.com/builder-dev/builder/platform"
	"github.com/builder-dev/builder/solver"
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

// solvePlatforms solves a build of several platforms, or with
// attestations, and writes its outputs: each platform's images are
// assembled as soon as the platform is solved, beside the platforms still
// building (the first platform's layers are compressed while the other
// links, say), and the index once all are. Registry and local caches get
// one cache of all the platforms' steps, each platform's image its own
// inline cache.
func (s *State) solvePlatforms(ctx context.Context, t *target, sv *solver.Solver, use *gc.Use) (*Result, error) {
	eopt := exportOptions(t.opt, t.epoch, use)
	eopt.Pushes = t.pushes
	eopt.ProvenanceRequest = provenanceRequest(t.opt, t.started)
	roots := t.roots()
	pl, err := export.StartPlatforms(ctx, s.exportStores(), eopt, roots)
	if err != nil {
		return nil, err
	}
	all := make(multiarch.Solves, len(roots))
	_, err = multiarch.Solve(ctx, sv, roots, func(i int, r solver.Result) error {
		d := s.solve(sv, roots[i], r.Snapshot, t.epoch, t.sess)
		img := export.Image{Platform: t.fopt.TargetPlatform, Root: roots[i], Config: t.fe.Image, Top: r.Snapshot}
		if i > 0 {
			img.Platform, img.Config = t.more[i-1].platform, t.more[i-1].fe.Image
		}
		var err error
		if img.InlineCache, err = s.inlineCache(ctx, t.opt, d); err != nil {
			return err
		}
		all[i] = d
		pl.Solved(i, img)
		return nil
	})
	if err != nil {
		pl.Stop()
		return nil, err
	}
	out, err := pl.Finish(ctx)
	if err != nil {
		return nil, err
	}
	if err := s.exportCache(ctx, t.opt, all, t.epoch); err != nil {
		return nil, err
	}
	return result(out, t.steps), nil
}
