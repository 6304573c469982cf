package build

import (
	"context"
	"errors"
	"fmt"
	"maps"

	"github.com/builder-dev/builder/build/export"
	"github.com/builder-dev/builder/build/multiarch"
	"github.com/builder-dev/builder/build/resolve"
	"github.com/builder-dev/builder/cache/remote"
	"github.com/builder-dev/builder/frontend/dockerfile"
	"github.com/builder-dev/builder/output"
	"github.com/builder-dev/builder/platform"
	"github.com/opencontainers/go-digest"
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
	// Attestations go into an index, even of one image, as BuildKit
	// puts them; a docker archive cannot hold one.
	if len(opt.Platforms) > 1 || opt.Provenance.Mode != "" {
		for _, o := range opt.Outputs {
			if o.Type == output.Docker {
				return nil, errors.New("docker exporter does not support exporting manifest lists, use the oci exporter (several platforms are built, or attestations asked for)")
			}
		}
	}
	if len(opt.Platforms) < 2 {
		return nil, nil
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

// exportPlatforms writes the outputs of a multi-platform build (first is
// the first platform's solve, more and tops the others') and exports the
// cache of every platform: registry and local caches get one cache of all
// their steps, each platform's image its own inline cache.
func (s *State) exportPlatforms(ctx context.Context, opt Options, eopt export.Options, p ocispec.Platform, fe *dockerfile.Result, first solved, more []platformImage, tops []string, steps *stepUsages) (*Result, error) {
	all := solvedAll{first}
	images := []export.Image{{Platform: p, Root: fe.Root, Config: fe.Image, Top: first.top}}
	for i, m := range more {
		d := first
		d.root, d.top = m.fe.Root, tops[i]
		all = append(all, d)
		images = append(images, export.Image{Platform: m.platform, Root: m.fe.Root, Config: m.fe.Image, Top: tops[i]})
	}
	for i, d := range all {
		var err error
		if images[i].InlineCache, err = d.inlineCache(ctx, opt); err != nil {
			return nil, err
		}
	}
	out, err := export.Platforms(ctx, s.exportStores(), eopt, images)
	if err != nil {
		return nil, err
	}
	if err := s.remoteCache(opt).Export(ctx, opt.CacheTo, all, first.epoch); err != nil {
		return nil, err
	}
	return result(out, steps), nil
}

// solvedAll are the solves of a multi-platform build's platforms, as one
// for the cache export: every platform's records.
type solvedAll []solved

func (a solvedAll) Records(ctx context.Context, max bool) (map[digest.Digest]string, error) {
	recs := map[digest.Digest]string{}
	for _, d := range a {
		r, err := d.Records(ctx, max)
		if err != nil {
			return nil, err
		}
		maps.Copy(recs, r)
	}
	return recs, nil
}

var _ remote.CacheMountSolve = solvedAll{}

// CacheMounts are every platform's RUN cache mounts, each once.
func (a solvedAll) CacheMounts(ctx context.Context) ([]remote.CacheMount, error) {
	var out []remote.CacheMount
	seen := map[string]bool{}
	for _, d := range a {
		ms, err := d.CacheMounts(ctx)
		if err != nil {
			return nil, err
		}
		for _, m := range ms {
			if !seen[m.Key] {
				seen[m.Key] = true
				out = append(out, m)
			}
		}
	}
	return out, nil
}
