// Package export writes the solved result of a build to its outputs: it
// assembles the image once per set of exporter options the outputs ask for
// and names it in the local store, pushes it, writes OCI and docker
// archives and file trees; for several platforms it writes an image index
// (with provenance attestations if asked) or a directory per platform.
// It takes the stores and options it needs explicitly, not the build's
// State.
package export

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/builder-dev/builder/build/multiarch"
	"github.com/builder-dev/builder/cache"
	"github.com/builder-dev/builder/cache/content"
	"github.com/builder-dev/builder/exporter"
	"github.com/builder-dev/builder/exporter/archive"
	"github.com/builder-dev/builder/exporter/filetree"
	"github.com/builder-dev/builder/exporter/push"
	"github.com/builder-dev/builder/gc"
	"github.com/builder-dev/builder/imagestore"
	"github.com/builder-dev/builder/llb"
	"github.com/builder-dev/builder/output"
	"github.com/builder-dev/builder/snapshot"
	"github.com/builder-dev/builder/solver"
	"github.com/builder-dev/builder/source"
	"github.com/google/go-containerregistry/pkg/authn"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Stores are where images are assembled from and written to.
type Stores struct {
	DB         *cache.DB
	Content    *content.Store
	Snapshots  snapshot.Snapshotter
	Registries *source.Registries
}

// Options are what the outputs of a build ask for.
type Options struct {
	// Outputs are the -o outputs; Tags the -t names, which go to the
	// image outputs without names or else to the local store (and with
	// Push to their registries).
	Outputs []output.Spec
	Tags    []string
	Push    bool
	// Keychain gives the credentials of pushes.
	Keychain authn.Keychain
	// SquashAbove, when positive, merges the oldest layers (--squash-above).
	SquashAbove int
	// Annotations go on the manifest, DescriptorAnnotations on its
	// descriptor (--annotation).
	Annotations, DescriptorAnnotations map[string]string
	// Epoch is the build's SOURCE_DATE_EPOCH, nil if unset.
	Epoch *time.Time
	// InlineCache is the cache config put into image configs for
	// --cache-to type=inline (one platform only).
	InlineCache string
	// Use records the exported manifests for the GC.
	Use *gc.Use
	// Progress gets the export's output lines as one more step; may be nil.
	Progress solver.Progress
	// Provenance and ProvenanceRequest make the SLSA provenance of each
	// platform of a multi-platform build (--provenance).
	Provenance        multiarch.Provenance
	ProvenanceRequest multiarch.Request
	// SBOMScanner, when set, scans each platform's file tree for an SPDX
	// SBOM attestation (--sbom); a single-platform build then gets an
	// index too, as with BuildKit.
	SBOMScanner string
	// Pushes, when set, are the pushes StartPushes started for these
	// options.
	Pushes *Pushes
}

// Image is one platform's solved build.
type Image struct {
	Platform ocispec.Platform
	// Root is the build graph: its vertices number the progress steps
	// before the export's, and provenance describes it.
	Root *llb.Vertex
	// Config is the image config; Top the snapshot of the file tree.
	Config dockerspec.DockerOCIImage
	Top    string
	// InlineCache is this platform's cache config for --cache-to
	// type=inline in a build of several platforms (Options.InlineCache
	// is a single platform's).
	InlineCache string
}

// Result is the image of the first image or registry output, else of the
// first oci or docker output, else the default image; its Names are the
// local store names it got.
type Result struct {
	Manifest ocispec.Descriptor
	Config   []byte
	Names    []string
}

// job is what assembling one platform's image needs.
type job struct {
	top         string
	config      dockerspec.DockerOCIImage
	epoch       *time.Time
	inlineCache string
	use         *gc.Use
	// step reports the export in the progress stream.
	step        *step
	squashAbove int
}

// Single writes the outputs of a build of one platform.
func Single(ctx context.Context, st Stores, opt Options, img Image) (*Result, error) {
	j := job{top: img.Top, config: img.Config, epoch: opt.Epoch, use: opt.Use, squashAbove: opt.SquashAbove,
		inlineCache: opt.InlineCache, step: newStep(opt.Progress, img.Root)}
	out, err := export(ctx, st, opt, j)
	j.step.done(err)
	return out, err
}

// export assembles the image of a build once per set of options its
// outputs ask for and writes every output: names in the local store,
// pushes, archives, file trees.
func export(ctx context.Context, st Stores, opt Options, j job) (*Result, error) {
	outputs, primary, err := planOutputs(opt)
	if err != nil {
		return nil, err
	}
	// The pushes' first requests (ping, credentials, what the tag names)
	// go while the image is assembled.
	pushes := opt.startPushes(ctx, st, outputs)
	defer pushes.wait()
	a := newAssembler(st, opt, j)
	a.staged = true
	defer a.release()
	primaryImage, err := a.assemble(ctx, outputs[primary])
	if err != nil {
		return nil, err
	}
	out := &Result{Manifest: primaryImage.Manifest, Config: primaryImage.Config}
	for i, o := range outputs {
		img, err := a.assemble(ctx, o)
		if err != nil {
			return nil, err
		}
		names := outputNames(o, opt.Tags)
		if o.Type != output.Image && o.Type != output.Registry {
			if err := a.ex.Finish(img, nil); err != nil {
				return nil, err
			}
			if err := writeOutput(ctx, st, o, img, names); err != nil {
				return nil, err
			}
			continue
		}
		rec := cache.Image{Manifest: img.Manifest, Snapshot: j.top, Created: time.Now().UTC()}
		stored, err := storeAndPush(ctx, st, o, rec, names, pushing{started: pushes[i], step: j.step, size: img.Size(),
			record: func(names []cache.Image) error { return a.ex.Finish(img, names) }})
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
	job    job
	images map[exporter.Options]*exporter.Image
	// descAnnotations go on the manifest's descriptor (--annotation
	// manifest-descriptor:...).
	descAnnotations map[string]string
	// staged: images are assembled with AssembleStaged, each finished by
	// the caller (exporter.Finish) and all released by release.
	staged bool
	// lease leases an assembled image's blobs for the build (tests
	// replace it).
	lease func(context.Context, *exporter.Image) error
}

func newAssembler(st Stores, opt Options, j job) *assembler {
	return &assembler{ex: &exporter.Exporter{DB: st.DB, Content: st.Content, Snapshots: st.Snapshots, Log: j.step.logWriter(), Annotations: opt.Annotations},
		job: j, images: map[exporter.Options]*exporter.Image{}, descAnnotations: opt.DescriptorAnnotations,
		lease: func(ctx context.Context, img *exporter.Image) error {
			return j.use.Exported(ctx, img.Manifest, img.ManifestBytes, img.Config)
		}}
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
	if a.staged {
		// A staged image holds the locks of the layers it made until
		// finished, and another assembly may want the same ones.
		for _, img := range a.images {
			if err := a.ex.Finish(img, nil); err != nil {
				return nil, err
			}
		}
	}
	img, err := a.ex.AssembleStaged(ctx, a.job.top, a.job.config, eo)
	if err != nil {
		return nil, err
	}
	// Leased before Finish records them: until then the new blobs are
	// named by nothing, and a prune in another process may remove them.
	if err := a.lease(ctx, img); err != nil {
		a.ex.Release(img)
		return nil, err
	}
	if !a.staged {
		if err := a.ex.Finish(img, nil); err != nil {
			a.ex.Release(img)
			return nil, err
		}
	}
	img.Manifest.Annotations = a.descAnnotations
	a.images[eo] = img
	return img, nil
}

// release gives up the images left unfinished (see staged).
func (a *assembler) release() {
	for _, img := range a.images {
		a.ex.Release(img)
	}
}

// pushing is how an image output's image is pushed: the pushes started
// for its names, and reported where with what size of blobs; record,
// when set, names the image in the store (else DB.PutExport does).
type pushing struct {
	started map[string]*push.Pending
	step    *step
	size    int64
	record  func([]cache.Image) error
}

// started holds the pushes begun for each output, by name.
type started []map[string]*push.Pending

// startPushes starts the push of each name of each output that pushes.
// A name that does not parse starts nothing: storeAndPush reports it.
func startPushes(ctx context.Context, st Stores, opt Options, outputs []output.Spec) started {
	out := make(started, len(outputs))
	for i, o := range outputs {
		if o.Type != output.Registry && !o.Push {
			continue
		}
		out[i] = map[string]*push.Pending{}
		for _, n := range outputNames(o, opt.Tags) {
			if ref, err := st.Registries.ParseReference(n); err == nil {
				out[i][n] = push.Start(ctx, ref, opt.Keychain, st.DB)
			}
		}
	}
	return out
}

// Pushes are the pushes of a build's outputs started with the build
// (StartPushes), for Options.Pushes.
type Pushes struct {
	started started
	cancel  context.CancelFunc
}

// StartPushes starts the pushes opt's outputs ask for while the build
// runs: a no-op rebuild then finds its tag's manifest unchanged without a
// round trip after the solve (push.RecheckAfter bounds how old that answer
// may be). Stop must follow.
func StartPushes(ctx context.Context, st Stores, opt Options) *Pushes {
	outputs, _, err := planOutputs(opt)
	if err != nil {
		return nil // export reports it
	}
	ctx, cancel := context.WithCancel(ctx)
	return &Pushes{started: startPushes(ctx, st, opt, outputs), cancel: cancel}
}

// startPushes returns the pushes started with the build, or starts them.
func (opt Options) startPushes(ctx context.Context, st Stores, outputs []output.Spec) started {
	if opt.Pushes != nil {
		return opt.Pushes.started
	}
	return startPushes(ctx, st, opt, outputs)
}

// Stop cancels what the pushes still ask (a build that failed before its
// export) and waits for them.
func (p *Pushes) Stop() {
	if p != nil {
		p.cancel()
		p.started.wait()
	}
}

// wait waits for the pushes started.
func (s started) wait() {
	for _, m := range s {
		for _, p := range m {
			p.Wait()
		}
	}
}

// storeAndPush names an image output's image (rec, an image or an index
// with its platform images) in the local store and pushes it if asked. It
// returns the names it gave in the store.
func storeAndPush(ctx context.Context, s Stores, o output.Spec, rec cache.Image, names []string, p pushing) ([]string, error) {
	push := o.Type == output.Registry || o.Push
	if push && len(names) == 0 {
		return nil, fmt.Errorf("pushing needs a name: give -t NAME or -o type=%s,name=NAME", o.Type)
	}
	for _, n := range names {
		if _, err := s.Registries.ParseReference(n); err != nil {
			return nil, err
		}
	}
	var recs []cache.Image
	if !o.NoStore {
		for _, n := range names {
			rec.Name = n
			recs = append(recs, rec)
		}
	}
	// The names go to the store, with the records of the image's blobs
	// (made durable first), in one transaction, while the push runs: a
	// push reads the blobs, which AssembleStaged made whole, not records.
	record := p.record
	if record == nil {
		record = func(recs []cache.Image) error { return s.DB.PutExport(nil, recs) }
	}
	// A failed store write (a sync, the DB) fails the build: it stops
	// the push too, rather than leave the image pushed, and the tag is
	// put only once the write succeeded (blobs upload meanwhile).
	pctx, cancel := context.WithCancel(ctx)
	defer cancel()
	named := make(chan struct{})
	var nerr error // set before named is closed
	go func() {
		defer close(named)
		if nerr = record(recs); nerr != nil {
			cancel()
		}
	}()
	stored := func(ctx context.Context) error {
		select {
		case <-named:
			return nerr
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	perr := pushNames(pctx, s, names, rec, p, push, stored)
	// The result waits for the store write whatever ctx says: it does not
	// take ctx and ends on its own, and a build cancelled after its image
	// was named (a bake's other target failing) must report the names it
	// got. (Waiting on ctx too made select pick a cancellation over a
	// finished write at random.)
	<-named
	if nerr != nil {
		return nil, nerr
	}
	if perr != nil {
		return nil, perr
	}
	var given []string
	for _, r := range recs {
		given = append(given, r.Name)
	}
	return given, nil
}

// pushNames pushes rec's image to names if push, putting each name once
// ready returned nil.
func pushNames(ctx context.Context, s Stores, names []string, rec cache.Image, p pushing, push bool, ready func(context.Context) error) error {
	if !push {
		return nil
	}
	for _, n := range names {
		ref, err := s.Registries.ParseReference(n)
		if err != nil {
			return err
		}
		start := time.Now()
		if err := p.started[n].PushWhen(ctx, s.Content, rec.Manifest, ready); err != nil {
			return err
		}
		p.step.pushed(ref.String(), p.size, time.Since(start))
	}
	return nil
}

// writeOutput writes an archive or a file tree output.
func writeOutput(ctx context.Context, s Stores, o output.Spec, img *exporter.Image, names []string) error {
	switch o.Type {
	case output.OCI:
		if len(names) > 1 {
			names = names[:1]
		}
		images := []archive.Image{{Manifest: img.Manifest, Names: names}}
		if o.Directory {
			if err := archive.WriteOCI(archive.DirSink(o.Dest), s.Content, images); err != nil {
				return fmt.Errorf("writing OCI layout %s: %w", o.Dest, err)
			}
			return nil
		}
		return writeFileAtomic(o.Dest, "OCI layout", func(w io.Writer) error {
			return archive.WriteOCI(archive.TarSink(w), s.Content, images)
		})
	case output.Docker:
		images := []archive.Image{{Manifest: img.Manifest, Names: names}}
		return writeFileAtomic(o.Dest, "docker archive", func(w io.Writer) error {
			return archive.WriteDocker(archive.TarSink(w), s.Content, images)
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
