package build

import (
	"context"
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/builder-dev/builder/cache"
	"github.com/builder-dev/builder/exporter"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
)

// Output is one place to write the built image, as `docker buildx build
// -o` names it.
type Output struct {
	// Type is image, registry, oci, docker, local or tar.
	Type string
	// Dest is the file or directory written (oci, docker, local, tar).
	Dest string
	// Attrs are the other key=value pairs: name, push, compression,
	// compression-level, force-compression, oci-mediatypes,
	// rewrite-timestamp, tar.
	Attrs map[string]string
}

// outputKeys are the keys each output type accepts besides type and dest.
var outputKeys = map[string][]string{
	"image":    {"name", "push", "compression", "compression-level", "force-compression", "oci-mediatypes", "rewrite-timestamp", "store"},
	"registry": {"name", "push", "compression", "compression-level", "force-compression", "oci-mediatypes", "rewrite-timestamp"},
	"oci":      {"name", "tar", "compression", "compression-level", "force-compression", "oci-mediatypes", "rewrite-timestamp"},
	"docker":   {"name", "compression", "compression-level", "force-compression", "oci-mediatypes", "rewrite-timestamp"},
	"local":    nil,
	"tar":      nil,
}

// ParseOutput reads one -o value in `docker buildx build` syntax: CSV
// key=value fields (type=image,"name=a,b",push=true), or a bare path, which
// means type=local,dest=PATH.
func ParseOutput(s string) (Output, error) {
	if s != "" && !strings.Contains(s, "=") {
		if s == "-" {
			return Output{}, errors.New(`-o -: writing to stdout is not supported; use type=tar,dest=FILE`)
		}
		return Output{Type: "local", Dest: s}, nil
	}
	fields, err := csv.NewReader(strings.NewReader(s)).Read()
	if err != nil {
		return Output{}, fmt.Errorf("-o %s: %w", s, err)
	}
	o := Output{Attrs: map[string]string{}}
	for _, f := range fields {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return Output{}, fmt.Errorf("-o %s: %q is not key=value", s, f)
		}
		k = strings.ToLower(strings.TrimSpace(k))
		switch k {
		case "type":
			o.Type = v
		case "dest":
			o.Dest = v
		default:
			o.Attrs[k] = v
		}
	}
	if o.Type == "" {
		return Output{}, fmt.Errorf("-o %s: missing type= (one of image, registry, oci, docker, local, tar)", s)
	}
	if err := o.check(); err != nil {
		return Output{}, fmt.Errorf("-o %s: %w", s, err)
	}
	return o, nil
}

func (o Output) check() error {
	keys, ok := outputKeys[o.Type]
	if !ok {
		return fmt.Errorf("unknown output type %q (supported: image, registry, oci, docker, local, tar)", o.Type)
	}
	for k := range o.Attrs {
		if !slices.Contains(keys, k) {
			if len(keys) == 0 {
				return fmt.Errorf("type=%s takes only dest=, not %q", o.Type, k)
			}
			return fmt.Errorf("type=%s: unknown key %q (supported: %s)", o.Type, k, strings.Join(append([]string{"dest"}, keys...), ", "))
		}
	}
	switch o.Type {
	case "image", "registry":
		if o.Dest != "" {
			return fmt.Errorf("type=%s takes no dest= (did you mean type=oci or type=docker?)", o.Type)
		}
	case "docker":
		if o.Dest == "" {
			return errors.New("type=docker needs dest=FILE.tar: there is no daemon to load the image into (the local store is type=image)")
		}
	default:
		if o.Dest == "" {
			return fmt.Errorf("type=%s needs dest=", o.Type)
		}
	}
	for _, k := range []string{"push", "force-compression", "oci-mediatypes", "rewrite-timestamp", "tar", "store"} {
		if v, ok := o.Attrs[k]; ok {
			if _, err := strconv.ParseBool(v); err != nil {
				return fmt.Errorf("%s=%q: want true or false", k, v)
			}
		}
	}
	_, err := o.imageOptions(nil)
	return err
}

func (o Output) flag(k string, def bool) bool {
	v, ok := o.Attrs[k]
	if !ok || v == "" {
		return def
	}
	b, _ := strconv.ParseBool(v)
	return b
}

// names are the name= values of an output (comma-separated, as buildx
// allows), each given a tag if it has none.
func (o Output) names() []string {
	var out []string
	for _, n := range strings.Split(o.Attrs["name"], ",") {
		if n = strings.TrimSpace(n); n != "" {
			out = append(out, normaliseName(n))
		}
	}
	return out
}

// imageOptions are the exporter options an output asks for. Layer times
// are clamped to epoch unless rewrite-timestamp=false.
func (o Output) imageOptions(epoch *time.Time) (exporter.Options, error) {
	var opts exporter.Options
	var err error
	if opts.Compression, err = exporter.ParseCompression(o.Attrs["compression"]); err != nil {
		return opts, err
	}
	if v := o.Attrs["compression-level"]; v != "" {
		if opts.Level, err = strconv.Atoi(v); err != nil {
			return opts, fmt.Errorf("compression-level=%q: not a number", v)
		}
	}
	opts.ForceCompression = o.flag("force-compression", false)
	opts.DockerMediaTypes = !o.flag("oci-mediatypes", o.Type != "docker")
	if opts.DockerMediaTypes && opts.Compression == exporter.Zstd {
		return opts, errors.New("compression=zstd needs oci-mediatypes=true")
	}
	if o.flag("rewrite-timestamp", true) {
		opts.SourceDateEpoch = epoch
	}
	return opts, nil
}

// SourceDateEpochArg is the build arg (and environment variable) that makes
// a build reproducible.
const SourceDateEpochArg = "SOURCE_DATE_EPOCH"

// sourceDateEpoch reads SOURCE_DATE_EPOCH from the build args: nil when it
// is not set.
func sourceDateEpoch(args map[string]string) (*time.Time, error) {
	v := strings.TrimSpace(args[SourceDateEpochArg])
	if v == "" {
		return nil, nil
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil || n < 0 {
		return nil, fmt.Errorf("--build-arg %s=%s: want a number of seconds since 1970-01-01 UTC", SourceDateEpochArg, v)
	}
	t := time.Unix(n, 0).UTC()
	return &t, nil
}

// buildTimes returns the SOURCE_DATE_EPOCH of a build (nil if unset) and
// the time to record as the image's and its new history entries' creation:
// the epoch if set, else zero, which lets the exporter take each entry's
// time from the record of the step that made its layer (so a cached
// rebuild gives the same image).
func buildTimes(opt Options) (*time.Time, time.Time, error) {
	epoch, err := sourceDateEpoch(opt.BuildArgs)
	if err != nil {
		return nil, time.Time{}, err
	}
	if epoch != nil {
		return epoch, *epoch, nil
	}
	return nil, time.Time{}, nil
}

// export assembles the image of a build once per set of options its
// outputs ask for and writes every output: names in the local store,
// pushes, archives, file trees. The -t names go to the image outputs
// without name=, or else with the default image (gzip, OCI media types) to
// the local store. The result is the image of the first image or registry
// output, else of the first oci or docker output, else the default image;
// its Names are the local store names it got.
func (s *State) export(ctx context.Context, opt Options, top string, cfg dockerspec.DockerOCIImage, use *buildUse, epoch *time.Time) (*Result, error) {
	outputs := slices.Clone(opt.Outputs)
	tagsTaken := false // by an image output without name=
	firstImage, firstArchive := -1, -1
	for i, o := range outputs {
		if err := o.check(); err != nil {
			return nil, fmt.Errorf("output %s: %w", o.Type, err)
		}
		isImage := o.Type == "image" || o.Type == "registry"
		if isImage && o.Attrs["name"] == "" {
			tagsTaken = true
			if opt.Push {
				outputs[i].Attrs = cloneAttrs(o.Attrs)
				outputs[i].Attrs["push"] = "true"
			}
		}
		if isImage && firstImage < 0 {
			firstImage = i
		}
		if (o.Type == "oci" || o.Type == "docker") && firstArchive < 0 {
			firstArchive = i
		}
	}
	primary := firstImage
	if primary < 0 {
		primary = firstArchive
	}
	if !tagsTaken && (len(opt.Tags) > 0 || opt.Push || primary < 0) {
		// The -t names go to the local store (and with --push to their
		// registries) with the default image.
		implicit := Output{Type: "image", Attrs: map[string]string{}}
		if opt.Push {
			implicit.Attrs["push"] = "true"
		}
		outputs = append(outputs, implicit)
		if primary < 0 {
			primary = len(outputs) - 1
		}
	}

	ex := &exporter.Exporter{DB: s.DB, Content: s.Content, Snapshots: s.Snapshots, Log: opt.exportStep.logWriter(), Annotations: opt.Annotations.Manifest}
	images := map[exporter.Options]*exporter.Image{}
	assemble := func(o Output) (*exporter.Image, error) {
		eo, err := o.imageOptions(epoch)
		if err != nil {
			return nil, err
		}
		eo.InlineCache = opt.inlineCache
		eo.SquashAbove = opt.SquashAbove
		// Options compare by value; every output shares the one epoch pointer.
		if img, ok := images[eo]; ok {
			return img, nil
		}
		img, err := ex.AssembleWith(ctx, top, cfg, eo)
		if err != nil {
			return nil, err
		}
		use.exported(img.Manifest, img.ManifestBytes)
		img.Manifest.Annotations = opt.Annotations.ManifestDescriptor
		images[eo] = img
		return img, nil
	}

	out := &Result{}
	primaryImage, err := assemble(outputs[primary])
	if err != nil {
		return nil, err
	}
	out.Manifest, out.Config = primaryImage.Manifest, primaryImage.Config
	for _, o := range outputs {
		img, err := assemble(o)
		if err != nil {
			return nil, err
		}
		names := o.names()
		if len(names) == 0 {
			for _, t := range opt.Tags {
				names = append(names, normaliseName(t))
			}
		}
		switch o.Type {
		case "image", "registry":
			push := o.Type == "registry" || o.flag("push", false)
			if push && len(names) == 0 {
				return nil, fmt.Errorf("pushing needs a name: give -t NAME or -o type=%s,name=NAME", o.Type)
			}
			for _, n := range names {
				if _, err := s.Registries.ParseReference(n); err != nil {
					return nil, err
				}
			}
			if o.flag("store", true) {
				for _, n := range names {
					if err := s.DB.PutImage(cache.Image{Name: n, Manifest: img.Manifest, Snapshot: top, Created: time.Now().UTC()}); err != nil {
						return nil, err
					}
					if img.Manifest.Digest == out.Manifest.Digest && !slices.Contains(out.Names, n) {
						out.Names = append(out.Names, n)
					}
				}
			}
			if push {
				for _, n := range names {
					ref, err := s.Registries.ParseReference(n)
					if err != nil {
						return nil, err
					}
					start := time.Now()
					if err := exporter.Push(ctx, s.Content, img.Manifest, ref, opt.Keychain, s.DB); err != nil {
						return nil, err
					}
					opt.exportStep.pushed(ref.String(), img.Size(), time.Since(start))
				}
			}
		default:
			if err := s.writeOutput(ctx, o, img, names); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

func cloneAttrs(m map[string]string) map[string]string {
	out := make(map[string]string, len(m)+1)
	for k, v := range m {
		out[k] = v
	}
	return out
}

// writeOutput writes an archive or a file tree output.
func (s *State) writeOutput(ctx context.Context, o Output, img *exporter.Image, names []string) error {
	switch o.Type {
	case "oci":
		if len(names) > 1 {
			names = names[:1]
		}
		images := []exporter.ArchiveImage{{Manifest: img.Manifest, Names: names}}
		if !o.flag("tar", true) {
			if err := exporter.WriteOCIArchive(exporter.DirSink(o.Dest), s.Content, images); err != nil {
				return fmt.Errorf("writing OCI layout %s: %w", o.Dest, err)
			}
			return nil
		}
		return writeFileAtomic(o.Dest, "OCI layout", func(w io.Writer) error {
			return exporter.WriteOCIArchive(exporter.TarSink(w), s.Content, images)
		})
	case "docker":
		images := []exporter.ArchiveImage{{Manifest: img.Manifest, Names: names}}
		return writeFileAtomic(o.Dest, "docker archive", func(w io.Writer) error {
			return exporter.WriteDockerArchive(exporter.TarSink(w), s.Content, images)
		})
	case "tar":
		return writeFileAtomic(o.Dest, "file tree tar", func(w io.Writer) error {
			return exporter.WriteRootfs(ctx, w, s.Content, img.Manifest)
		})
	case "local":
		return exporter.WriteLocal(ctx, o.Dest, s.Content, img.Manifest)
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
