package build

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/builder-dev/builder/cache"
	"github.com/builder-dev/builder/exporter"
	"github.com/builder-dev/builder/exporter/filetree"
	"github.com/builder-dev/builder/imagestore"
	"github.com/builder-dev/builder/output"
	"github.com/google/go-containerregistry/pkg/authn"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
)

// exportJob is what writing the outputs needs of a finished build.
type exportJob struct {
	// top is the snapshot of the image's file tree; config its config.
	top    string
	config dockerspec.DockerOCIImage
	epoch  *time.Time
	// inlineCache is the cache config put into image configs for
	// --cache-to type=inline.
	inlineCache string
	use         *buildUse
	// step reports the export in the progress stream.
	step *exportStep
	// keychain gives the credentials of pushes.
	keychain    authn.Keychain
	squashAbove int
}

// export assembles the image of a build once per set of options its
// outputs ask for and writes every output: names in the local store,
// pushes, archives, file trees. The result is the image of the first image
// or registry output, else of the first oci or docker output, else the
// default image; its Names are the local store names it got.
func (s *State) export(ctx context.Context, opt Options, job exportJob) (*Result, error) {
	outputs, primary, err := planOutputs(opt)
	if err != nil {
		return nil, err
	}
	a := &assembler{ex: &exporter.Exporter{DB: s.DB, Content: s.Content, Snapshots: s.Snapshots, Log: job.step.logWriter(), Annotations: opt.Annotations.Manifest},
		job: job, images: map[exporter.Options]*exporter.Image{}, descAnnotations: opt.Annotations.ManifestDescriptor}
	primaryImage, err := a.assemble(ctx, outputs[primary])
	if err != nil {
		return nil, err
	}
	out := &Result{Manifest: primaryImage.Manifest, Config: primaryImage.Config}
	for _, o := range outputs {
		img, err := a.assemble(ctx, o)
		if err != nil {
			return nil, err
		}
		names := outputNames(o, opt.Tags)
		if o.Type != output.Image && o.Type != output.Registry {
			if err := s.writeOutput(ctx, o, img, names); err != nil {
				return nil, err
			}
			continue
		}
		stored, err := s.storeAndPush(ctx, job, o, img, names)
		if err != nil {
			return nil, err
		}
		for _, n := range stored {
			if img.Manifest.Digest == out.Manifest.Digest && !slices.Contains(out.Names, n) {
				out.Names = append(out.Names, n)
			}
		}
	}
	return out, nil
}

// planOutputs checks the outputs of a build and adds the one the -t names
// imply: they go to the image outputs without names, or else with the
// default image (gzip, OCI media types) to the local store (and with
// --push to their registries). It returns the index of the output whose
// image is the build's result.
func planOutputs(opt Options) ([]output.Spec, int, error) {
	outputs := slices.Clone(opt.Outputs)
	tagsTaken := false // by an image output without names
	firstImage, firstArchive := -1, -1
	for i, o := range outputs {
		if err := o.Check(); err != nil {
			return nil, 0, fmt.Errorf("output %s: %w", o.Type, err)
		}
		isImage := o.Type == output.Image || o.Type == output.Registry
		if isImage && len(o.Names) == 0 {
			tagsTaken = true
			outputs[i].Push = o.Push || opt.Push
		}
		if isImage && firstImage < 0 {
			firstImage = i
		}
		if (o.Type == output.OCI || o.Type == output.Docker) && firstArchive < 0 {
			firstArchive = i
		}
	}
	primary := firstImage
	if primary < 0 {
		primary = firstArchive
	}
	if !tagsTaken && (len(opt.Tags) > 0 || opt.Push || primary < 0) {
		outputs = append(outputs, output.Spec{Type: output.Image, Push: opt.Push})
		if primary < 0 {
			primary = len(outputs) - 1
		}
	}
	return outputs, primary, nil
}

// outputNames are the normalised names of an output's image: its own, or
// else the -t names.
func outputNames(o output.Spec, tags []string) []string {
	names := o.Names
	if len(names) == 0 {
		names = tags
	}
	out := make([]string, 0, len(names))
	for _, n := range names {
		out = append(out, imagestore.Normalise(n))
	}
	return out
}

// assembler assembles the image of a build once per set of exporter
// options.
type assembler struct {
	ex     *exporter.Exporter
	job    exportJob
	images map[exporter.Options]*exporter.Image
	// descAnnotations go on the manifest's descriptor (--annotation
	// manifest-descriptor:...).
	descAnnotations map[string]string
}

func (a *assembler) assemble(ctx context.Context, o output.Spec) (*exporter.Image, error) {
	eo, err := o.ImageOptions(a.job.epoch)
	if err != nil {
		return nil, err
	}
	eo.InlineCache = a.job.inlineCache
	eo.SquashAbove = a.job.squashAbove
	// Options compare by value; every output shares the one epoch pointer.
	if img, ok := a.images[eo]; ok {
		return img, nil
	}
	img, err := a.ex.AssembleWith(ctx, a.job.top, a.job.config, eo)
	if err != nil {
		return nil, err
	}
	a.job.use.exported(img.Manifest, img.ManifestBytes)
	img.Manifest.Annotations = a.descAnnotations
	a.images[eo] = img
	return img, nil
}

// storeAndPush names an image output's image in the local store and pushes
// it if asked. It returns the names it gave in the store.
func (s *State) storeAndPush(ctx context.Context, job exportJob, o output.Spec, img *exporter.Image, names []string) ([]string, error) {
	push := o.Type == output.Registry || o.Push
	if push && len(names) == 0 {
		return nil, fmt.Errorf("pushing needs a name: give -t NAME or -o type=%s,name=NAME", o.Type)
	}
	for _, n := range names {
		if _, err := s.Registries.ParseReference(n); err != nil {
			return nil, err
		}
	}
	var stored []string
	if !o.NoStore {
		for _, n := range names {
			if err := s.DB.PutImage(cache.Image{Name: n, Manifest: img.Manifest, Snapshot: job.top, Created: time.Now().UTC()}); err != nil {
				return nil, err
			}
			stored = append(stored, n)
		}
	}
	if !push {
		return stored, nil
	}
	for _, n := range names {
		ref, err := s.Registries.ParseReference(n)
		if err != nil {
			return nil, err
		}
		start := time.Now()
		if err := exporter.Push(ctx, s.Content, img.Manifest, ref, job.keychain, s.DB); err != nil {
			return nil, err
		}
		job.step.pushed(ref.String(), img.Size(), time.Since(start))
	}
	return stored, nil
}

// writeOutput writes an archive or a file tree output.
func (s *State) writeOutput(ctx context.Context, o output.Spec, img *exporter.Image, names []string) error {
	switch o.Type {
	case output.OCI:
		if len(names) > 1 {
			names = names[:1]
		}
		images := []exporter.ArchiveImage{{Manifest: img.Manifest, Names: names}}
		if o.Directory {
			if err := exporter.WriteOCIArchive(exporter.DirSink(o.Dest), s.Content, images); err != nil {
				return fmt.Errorf("writing OCI layout %s: %w", o.Dest, err)
			}
			return nil
		}
		return writeFileAtomic(o.Dest, "OCI layout", func(w io.Writer) error {
			return exporter.WriteOCIArchive(exporter.TarSink(w), s.Content, images)
		})
	case output.Docker:
		images := []exporter.ArchiveImage{{Manifest: img.Manifest, Names: names}}
		return writeFileAtomic(o.Dest, "docker archive", func(w io.Writer) error {
			return exporter.WriteDockerArchive(exporter.TarSink(w), s.Content, images)
		})
	case output.Tar:
		return writeFileAtomic(o.Dest, "file tree tar", func(w io.Writer) error {
			return filetree.WriteTar(ctx, w, s.Content, img.Manifest)
		})
	case output.Local:
		return filetree.WriteDir(ctx, o.Dest, s.Content, img.Manifest)
	}
	return fmt.Errorf("output type %q is not supported (supported: image, registry, oci, docker, local, tar)", o.Type)
}

// writeFileAtomic writes dest through a temporary file beside it, renamed
// into place once complete.
func writeFileAtomic(dest, what string, write func(io.Writer) error) error {
	if dir := filepath.Dir(dest); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return fmt.Errorf("writing %s: %w", what, err)
		}
	}
	tmp := dest + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return fmt.Errorf("writing %s: %w", what, err)
	}
	if err := write(f); err != nil {
		f.Close()
		os.Remove(tmp)
		return fmt.Errorf("writing %s %s: %w", what, dest, err)
	}
	if err := f.Close(); err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, dest)
}
