package build

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/builder-dev/builder/attest"
	"github.com/builder-dev/builder/build/multiarch"
	"github.com/builder-dev/builder/build/resolve"
	"github.com/builder-dev/builder/exporter"
	"github.com/builder-dev/builder/frontend/dockerfile"
	"github.com/builder-dev/builder/gc"
	"github.com/builder-dev/builder/llb"
	"github.com/builder-dev/builder/output"
	"github.com/builder-dev/builder/platform"
	"github.com/builder-dev/builder/solver"
	"github.com/google/go-containerregistry/pkg/v1/types"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// platformImage is one platform's lowered graph and, once solved, the
// snapshot of its file tree.
type platformImage struct {
	platform ocispec.Platform
	fe       *dockerfile.Result
	top      string
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

// solveAll solves root and the roots of more in one solve (see
// multiarch.Solve); tops are more's snapshots.
func solveAll(ctx context.Context, sv *solver.Solver, root *llb.Vertex, more []platformImage) (solver.Result, []string, error) {
	roots := []*llb.Vertex{root}
	for _, m := range more {
		roots = append(roots, m.fe.Root)
	}
	res, err := multiarch.Solve(ctx, sv, roots)
	if err != nil {
		return solver.Result{}, nil, err
	}
	var tops []string
	for _, r := range res[1:] {
		tops = append(tops, r.Snapshot)
	}
	return res[0], tops, nil
}

func zipTops(more []platformImage, tops []string) []platformImage {
	for i := range more {
		more[i].top = tops[i]
	}
	return more
}

// exportPlatforms writes the outputs of a build of several platforms:
// image, registry and oci outputs get an image index of the platforms'
// images (a Docker manifest list with oci-mediatypes=false), local and tar
// outputs a directory per platform. The local store keeps the image of
// the host platform (else the first one) under the names: it does not
// hold indexes yet.
func (s *State) exportPlatforms(ctx context.Context, opt Options, images []platformImage, epoch *time.Time, use *gc.Use, started time.Time) (*Result, error) {
	outputs, primary, err := planOutputs(opt)
	if err != nil {
		return nil, err
	}
	step := newExportStep(opt.Progress, images[0].fe.Root)
	out, err := s.writePlatformOutputs(ctx, opt, outputs, primary, images, epoch, use, step, started)
	step.done(err)
	return out, err
}

func (s *State) writePlatformOutputs(ctx context.Context, opt Options, outputs []output.Spec, primary int, images []platformImage, epoch *time.Time, use *gc.Use, step *exportStep, started time.Time) (*Result, error) {
	assemblers := make([]*assembler, len(images))
	for i, pi := range images {
		job := exportJob{top: pi.top, config: pi.fe.Image, epoch: epoch, use: use, keychain: opt.Keychain, squashAbove: opt.SquashAbove, step: step}
		assemblers[i] = &assembler{ex: &exporter.Exporter{DB: s.DB, Content: s.Content, Snapshots: s.Snapshots, Log: step.logWriter(), Annotations: opt.Annotations.Manifest},
			job: job, images: map[exporter.Options]*exporter.Image{}, descAnnotations: opt.Annotations.ManifestDescriptor}
	}
	statements, err := provenances(opt, images, started)
	if err != nil {
		return nil, err
	}
	var out *Result
	for i, o := range outputs {
		idx, imgs, err := s.writeIndex(ctx, o, images, assemblers, statements)
		if err != nil {
			return nil, err
		}
		if i == primary {
			out = &Result{Manifest: idx}
		}
		names := outputNames(o, opt.Tags)
		switch o.Type {
		case output.Image, output.Registry:
			stored, err := s.storeAndPushIndex(ctx, o, idx, imgs, images, names, opt)
			if err != nil {
				return nil, err
			}
			if i == primary {
				out.Names = stored
			}
		case output.OCI:
			if err = s.writeOutput(ctx, o, &exporter.Image{Manifest: idx}, names); err != nil {
				return nil, err
			}
		case output.Local, output.Tar:
			if err = s.writePlatformTrees(ctx, o, images, imgs); err != nil {
				return nil, err
			}
		default:
			return nil, fmt.Errorf("output type %q cannot hold several platforms", o.Type)
		}
	}
	return out, nil
}

// writeIndex assembles each platform's image for output o and writes the
// index of them to the content store.
func (s *State) writeIndex(ctx context.Context, o output.Spec, images []platformImage, as []*assembler, statements []attest.Statement) (ocispec.Descriptor, []*exporter.Image, error) {
	eo, err := o.ImageOptions(nil)
	if err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	mediaType := ocispec.MediaTypeImageIndex
	if eo.DockerMediaTypes {
		mediaType = string(types.DockerManifestList)
	}
	var manifests []ocispec.Descriptor
	var imgs []*exporter.Image
	for i, pi := range images {
		img, err := as[i].assemble(ctx, o)
		if err != nil {
			return ocispec.Descriptor{}, nil, fmt.Errorf("platform %s: %w", platform.Format(pi.platform), err)
		}
		imgs = append(imgs, img)
		d := img.Manifest
		cp := pi.fe.Image.Platform
		d.Platform = &ocispec.Platform{OS: cp.OS, Architecture: cp.Architecture, Variant: cp.Variant}
		manifests = append(manifests, d)
	}
	idx, err := multiarch.WriteIndex(ctx, s.Content, mediaType, manifests, statements)
	return idx, imgs, err
}

// storeAndPushIndex names the host platform's image (else the first) in
// the local store and pushes every platform's image and then the index.
func (s *State) storeAndPushIndex(ctx context.Context, o output.Spec, idx ocispec.Descriptor, imgs []*exporter.Image, images []platformImage, names []string, opt Options) ([]string, error) {
	local := 0
	for i, pi := range images {
		if platform.Format(pi.platform) == platform.Format(platform.Host()) {
			local = i
		}
	}
	job := exportJob{top: images[local].top, keychain: opt.Keychain, step: nil}
	noPush := o
	noPush.Push, noPush.Type = false, output.Image
	stored, err := s.storeAndPush(ctx, job, noPush, imgs[local], names)
	if err != nil || !(o.Type == output.Registry || o.Push) {
		return stored, err
	}
	if len(names) == 0 {
		return nil, fmt.Errorf("pushing needs a name: give -t NAME or -o type=%s,name=NAME", o.Type)
	}
	for _, n := range names {
		ref, err := s.Registries.ParseReference(n)
		if err != nil {
			return nil, err
		}
		if err := exporter.PushIndex(ctx, s.Content, idx, ref, opt.Keychain, s.DB); err != nil {
			return nil, err
		}
	}
	return stored, nil
}

// writePlatformTrees writes each platform's file tree to its own
// subdirectory (linux_arm64/) of a local output or of a tar output's
// stream, as BuildKit does.
func (s *State) writePlatformTrees(ctx context.Context, o output.Spec, images []platformImage, imgs []*exporter.Image) error {
	var trees []multiarch.Tree
	for i, pi := range images {
		trees = append(trees, multiarch.Tree{Platform: pi.platform, Manifest: imgs[i].Manifest})
	}
	if o.Type == output.Local {
		return multiarch.WriteDirs(ctx, o.Dest, s.Content, trees)
	}
	return writeFileAtomic(o.Dest, "file tree tar", func(w io.Writer) error {
		return multiarch.WriteTar(ctx, w, s.Content, trees)
	})
}
