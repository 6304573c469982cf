package export

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/builder-dev/builder/attest"
	"github.com/builder-dev/builder/build/multiarch"
	"github.com/builder-dev/builder/cache"
	"github.com/builder-dev/builder/exporter"
	"github.com/builder-dev/builder/llb"
	"github.com/builder-dev/builder/output"
	"github.com/builder-dev/builder/platform"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
)

// Pipeline writes the outputs of a build of several platforms (or of one
// with attestations) while the build is solved: image, registry and oci
// outputs get an image index of the platforms' images (a Docker manifest
// list with oci-mediatypes=false), local and tar outputs a directory per
// platform; the local store keeps the index and its images under the
// names. Each platform's images are assembled (its new layers compressed
// and written) as soon as that platform is solved, beside the platforms
// still building: once all are, only the index and the outputs are left.
type Pipeline struct {
	s       Stores
	opt     Options
	outputs []output.Spec
	primary int
	step    *step
	images  []Image
	as      []*assembler
	// g runs the assemblies on ctx; cancel ends them when the build fails.
	g      errgroup.Group
	ctx    context.Context
	cancel context.CancelFunc
}

// StartPlatforms starts the export of the images of the platforms whose
// build graphs are roots, in order.
func StartPlatforms(ctx context.Context, s Stores, opt Options, roots []*llb.Vertex) (*Pipeline, error) {
	outputs, primary, err := planOutputs(opt)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	return &Pipeline{s: s, opt: opt, outputs: outputs, primary: primary, step: newStep(opt.Progress, roots...),
		images: make([]Image, len(roots)), as: make([]*assembler, len(roots)), ctx: ctx, cancel: cancel}, nil
}

// Solved starts assembling the image of platform i (solved as img) for
// every output. Each i is given once, from any goroutine, before Finish.
func (p *Pipeline) Solved(i int, img Image) {
	j := job{top: img.Top, config: img.Config, epoch: p.opt.Epoch, use: p.opt.Use, squashAbove: p.opt.SquashAbove, step: p.step, inlineCache: img.InlineCache}
	a := newAssembler(p.s, p.opt, j)
	p.images[i], p.as[i] = img, a
	p.g.Go(func() error {
		for _, o := range p.outputs {
			if _, err := a.assemble(p.ctx, o); err != nil {
				return fmt.Errorf("platform %s: %w", platform.Format(img.Platform), err)
			}
		}
		return nil
	})
}

// Stop ends the export of a build that failed, and waits for the
// assemblies under way.
func (p *Pipeline) Stop() {
	p.cancel()
	_ = p.g.Wait()
}

// Finish writes the outputs once every platform is Solved.
func (p *Pipeline) Finish(ctx context.Context) (*Result, error) {
	defer p.cancel()
	out, err := p.writeOutputs(ctx)
	p.step.done(err)
	return out, err
}

func (p *Pipeline) writeOutputs(ctx context.Context) (*Result, error) {
	s, opt, outputs, images := p.s, p.opt, p.outputs, p.images
	// The scans and the pushes' first requests go while the last
	// platforms are assembled.
	scans, err := startSBOMs(ctx, s, opt, images, p.step)
	if err != nil {
		p.Stop()
		return nil, err
	}
	defer scans.stop()
	pushes := opt.startPushes(ctx, s, outputs)
	defer pushes.wait()
	if err := p.g.Wait(); err != nil {
		return nil, err
	}
	statements, err := attestations(opt, images, scans)
	if err != nil {
		return nil, err
	}
	var out *Result
	for i, o := range outputs {
		idx, imgs, err := writeIndex(ctx, s, o, images, p.as, statements)
		if err != nil {
			return nil, err
		}
		if i == p.primary {
			out = &Result{Manifest: idx}
		}
		names := outputNames(o, opt.Tags)
		switch o.Type {
		case output.Image, output.Registry:
			rec, size := indexRecord(idx, imgs, images)
			stored, err := storeAndPush(ctx, s, o, rec, names, pushing{started: pushes[i], step: p.step, size: size})
			if err != nil {
				return nil, err
			}
			if i == p.primary {
				out.Names = stored
			}
		case output.OCI:
			if err = writeOutput(ctx, s, o, &exporter.Image{Manifest: idx}, names); err != nil {
				return nil, err
			}
		case output.Local, output.Tar:
			if err = writePlatformTrees(ctx, s, o, images, imgs, statements, opt.Epoch); err != nil {
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
func writeIndex(ctx context.Context, s Stores, o output.Spec, images []Image, as []*assembler, statements [][]attest.Statement) (ocispec.Descriptor, []*exporter.Image, error) {
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
			return ocispec.Descriptor{}, nil, fmt.Errorf("platform %s: %w", platform.Format(pi.Platform), err)
		}
		imgs = append(imgs, img)
		d := img.Manifest
		cp := pi.Config.Platform
		d.Platform = &ocispec.Platform{OS: cp.OS, Architecture: cp.Architecture, Variant: cp.Variant}
		manifests = append(manifests, d)
	}
	write := func() (ocispec.Descriptor, error) {
		return multiarch.WriteIndex(ctx, s.Content, mediaType, manifests, statements)
	}
	idx, err := write()
	if err != nil {
		return ocispec.Descriptor{}, nil, err
	}
	// The index and the attestation manifests are leased as the images
	// are (see gc.Use.Exported); the images' manifests are leased already.
	skip := map[digest.Digest]bool{}
	for _, m := range manifests {
		skip[m.Digest] = true
	}
	rewrite := func() error { _, err := write(); return err }
	if err := as[0].job.use.LeaseTree(ctx, idx.Digest, skip, rewrite); err != nil {
		return ocispec.Descriptor{}, nil, fmt.Errorf("leasing index %s: %w", idx.Digest, err)
	}
	return idx, imgs, nil
}

// indexRecord is the local store's record of the index with each
// platform's image (the host platform's snapshot is the one a plain
// `builder run` takes), and the size of the images' blobs.
func indexRecord(idx ocispec.Descriptor, imgs []*exporter.Image, images []Image) (cache.Image, int64) {
	rec := cache.Image{Manifest: idx, Snapshot: images[0].Top, Created: time.Now().UTC()}
	var size int64
	for i, pi := range images {
		cp := pi.Config.Platform
		p := ocispec.Platform{OS: cp.OS, Architecture: cp.Architecture, Variant: cp.Variant}
		if platform.Format(pi.Platform) == platform.Format(platform.Host()) {
			rec.Snapshot = pi.Top
		}
		rec.Platforms = append(rec.Platforms, cache.PlatformImage{Platform: p, Manifest: imgs[i].Manifest, Snapshot: pi.Top})
		size += imgs[i].Size()
	}
	return rec, size
}

// writePlatformTrees writes each platform's file tree to its own
// subdirectory (linux_arm64/) of a local output or of a tar output's
// stream, as BuildKit does, or with one platform (built with
// attestations) to the top; each tree's attestations go beside its files.
func writePlatformTrees(ctx context.Context, s Stores, o output.Spec, images []Image, imgs []*exporter.Image, statements [][]attest.Statement, epoch *time.Time) error {
	var trees []multiarch.Tree
	for i, pi := range images {
		t := multiarch.Tree{Manifest: imgs[i].Manifest, Epoch: epoch}
		if len(images) > 1 {
			t.Dir = platform.Dir(pi.Platform)
		}
		if statements != nil {
			t.Statements = statements[i]
		}
		trees = append(trees, t)
	}
	if o.Type == output.Local {
		return multiarch.WriteDirs(ctx, o.Dest, s.Content, trees)
	}
	return writeFileAtomic(o.Dest, "file tree tar", func(w io.Writer) error {
		return multiarch.WriteTar(ctx, w, s.Content, trees)
	})
}
