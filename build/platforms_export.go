package build

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"time"

	"github.com/builder-dev/builder/attest"
	"github.com/builder-dev/builder/build/resolve"
	"github.com/builder-dev/builder/exporter"
	"github.com/builder-dev/builder/exporter/filetree"
	"github.com/builder-dev/builder/frontend/dockerfile"
	"github.com/builder-dev/builder/gc"
	"github.com/builder-dev/builder/llb"
	"github.com/builder-dev/builder/output"
	"github.com/builder-dev/builder/platform"
	"github.com/builder-dev/builder/solver"
	"github.com/builder-dev/builder/source"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
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
		if err := checkRunnable(fe.Root); err != nil {
			return nil, err
		}
		out = append(out, platformImage{platform: p, fe: fe})
	}
	return out, nil
}

// solveAll solves root and the roots of more in one solve: vertices of
// equal digest (a stage FROM --platform=$BUILDPLATFORM) run once.
func solveAll(ctx context.Context, sv *solver.Solver, root *llb.Vertex, more []platformImage) (solver.Result, []string, error) {
	if len(more) == 0 {
		res, err := sv.Solve(ctx, root)
		return res, nil, err
	}
	var first solver.Result
	tops := make([]string, len(more))
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() (err error) { first, err = sv.Solve(gctx, root); return err })
	for i, m := range more {
		g.Go(func() error {
			res, err := sv.Solve(gctx, m.fe.Root)
			tops[i] = res.Snapshot
			return err
		})
	}
	return first, tops, g.Wait()
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
	idx := ocispec.Index{MediaType: mediaType}
	idx.SchemaVersion = 2
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
		idx.Manifests = append(idx.Manifests, d)
	}
	if err := s.attachProvenance(ctx, &idx, statements); err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	raw, err := json.Marshal(idx)
	if err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	d, err := s.Content.WriteBytes(ctx, raw)
	if err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	return ocispec.Descriptor{MediaType: mediaType, Digest: d, Size: int64(len(raw))}, imgs, nil
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
	raw, err := s.Content.ReadAll(idx.Digest)
	if err != nil {
		return nil, err
	}
	var index ocispec.Index
	if err := json.Unmarshal(raw, &index); err != nil {
		return nil, err
	}
	for _, n := range names {
		ref, err := s.Registries.ParseReference(n)
		if err != nil {
			return nil, err
		}
		for _, m := range index.Manifests { // the images, then any attestation manifests
			if err := exporter.Push(ctx, s.Content, m, ref.Context().Digest(m.Digest.String()), opt.Keychain, s.DB); err != nil {
				return nil, err
			}
		}
		if err := remote.Put(ref, rawManifest{raw: raw, mediaType: types.MediaType(idx.MediaType)}, source.DefaultRetry.RemoteOptions(ctx, opt.Keychain)...); err != nil {
			return nil, fmt.Errorf("pushing index %s: %w", ref, source.RegistryError(ref.Context().RegistryStr(), err))
		}
	}
	return stored, nil
}

// rawManifest is an index as go-containerregistry puts it.
type rawManifest struct {
	raw       []byte
	mediaType types.MediaType
}

func (r rawManifest) RawManifest() ([]byte, error)        { return r.raw, nil }
func (r rawManifest) MediaType() (types.MediaType, error) { return r.mediaType, nil }

// writePlatformTrees writes each platform's file tree to its own
// subdirectory (linux_arm64/) of a local output or of a tar output's
// stream, as BuildKit does.
func (s *State) writePlatformTrees(ctx context.Context, o output.Spec, images []platformImage, imgs []*exporter.Image) error {
	if o.Type == output.Local {
		for i, pi := range images {
			if err := filetree.WriteDir(ctx, filepath.Join(o.Dest, platform.Dir(pi.platform)), s.Content, imgs[i].Manifest); err != nil {
				return err
			}
		}
		return nil
	}
	return writeFileAtomic(o.Dest, "file tree tar", func(w io.Writer) error {
		tw := tar.NewWriter(w)
		for i, pi := range images {
			if err := prefixedTar(ctx, tw, platform.Dir(pi.platform), s, imgs[i].Manifest); err != nil {
				return err
			}
		}
		return tw.Close()
	})
}

// prefixedTar copies the file tree tar of one image into tw under dir/.
func prefixedTar(ctx context.Context, tw *tar.Writer, dir string, s *State, manifest ocispec.Descriptor) error {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(filetree.WriteTar(ctx, pw, s.Content, manifest)) }()
	defer pr.Close()
	if err := tw.WriteHeader(&tar.Header{Name: dir + "/", Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
		return err
	}
	tr := tar.NewReader(pr)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		hdr.Name = dir + "/" + hdr.Name
		if hdr.Typeflag == tar.TypeLink {
			hdr.Linkname = dir + "/" + hdr.Linkname
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
}
