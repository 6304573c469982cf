// Package output reads the outputs of a build (`-o` in `docker buildx
// build` syntax) into typed values, and checks them: the one place that
// knows their text.
package output

import (
	"encoding/csv"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/builder-dev/builder/exporter"
)

// Type is a kind of output, as `docker buildx build -o type=` names it.
type Type string

// The output types.
const (
	// Image names the image in the local store (and with Push pushes
	// it).
	Image Type = "image"
	// Registry is Image that always pushes.
	Registry Type = "registry"
	// OCI writes an OCI image layout, as a tar or a directory.
	OCI Type = "oci"
	// Docker writes a `docker save` tar.
	Docker Type = "docker"
	// Local writes the image's file tree into a directory.
	Local Type = "local"
	// Tar writes the image's file tree as a tar.
	Tar Type = "tar"
)

// Spec is one place to write the built image, as `docker buildx build -o`
// names it. Parse reads one from its text; each field says the key it
// comes from. The zero value of a field is the key's default.
type Spec struct {
	Type Type
	// Dest is the file or directory written (oci, docker, local, tar).
	Dest string
	// Names are the image's names (name=, comma-separated); an image
	// output without them takes the -t names.
	Names []string
	// Push pushes an image output to its names' registries (push=true);
	// a registry output always does.
	Push bool
	// NoStore keeps an image output out of the local store (store=false).
	NoStore bool
	// Directory writes an oci output as a directory, not a tar (tar=false).
	Directory bool
	// Compression is gzip (when empty), zstd or uncompressed
	// (compression=); CompressionLevel is its level, 0 the compressor's
	// default (compression-level=).
	Compression      string
	CompressionLevel int
	// ForceCompression recompresses base-image layers too
	// (force-compression=true).
	ForceCompression bool
	// MediaTypes is "oci" (oci-mediatypes=true) or "docker"
	// (oci-mediatypes=false); empty is OCI except for type=docker.
	MediaTypes string
	// KeepTimestamps leaves layer file times unclamped by
	// SOURCE_DATE_EPOCH (rewrite-timestamp=false).
	KeepTimestamps bool
}

// outputKeys are the keys each output type accepts besides type and dest.
var outputKeys = map[Type][]string{
	Image:    {"name", "push", "compression", "compression-level", "force-compression", "oci-mediatypes", "rewrite-timestamp", "store"},
	Registry: {"name", "push", "compression", "compression-level", "force-compression", "oci-mediatypes", "rewrite-timestamp"},
	OCI:      {"name", "tar", "compression", "compression-level", "force-compression", "oci-mediatypes", "rewrite-timestamp"},
	Docker:   {"name", "compression", "compression-level", "force-compression", "oci-mediatypes", "rewrite-timestamp"},
	Local:    nil,
	Tar:      nil,
}

// Parse reads one -o value in `docker buildx build` syntax: CSV
// key=value fields (type=image,"name=a,b",push=true), or a bare path, which
// means type=local,dest=PATH.
func Parse(s string) (Spec, error) {
	if s != "" && !strings.Contains(s, "=") {
		if s == "-" {
			return Spec{}, errors.New(`-o -: writing to stdout is not supported; use type=tar,dest=FILE`)
		}
		return Spec{Type: Local, Dest: s}, nil
	}
	fields, err := csv.NewReader(strings.NewReader(s)).Read()
	if err != nil {
		return Spec{}, fmt.Errorf("-o %s: %w", s, err)
	}
	var o Spec
	var keys, values []string
	for _, f := range fields {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return Spec{}, fmt.Errorf("-o %s: %q is not key=value", s, f)
		}
		switch k = strings.ToLower(strings.TrimSpace(k)); k {
		case "type":
			o.Type = Type(v)
		case "dest":
			o.Dest = v
		default:
			keys, values = append(keys, k), append(values, v)
		}
	}
	if o.Type == "" {
		return Spec{}, fmt.Errorf("-o %s: missing type= (one of image, registry, oci, docker, local, tar)", s)
	}
	if err := o.checkKeys(keys); err != nil {
		return Spec{}, fmt.Errorf("-o %s: %w", s, err)
	}
	for i, k := range keys {
		if err := o.set(k, values[i]); err != nil {
			return Spec{}, fmt.Errorf("-o %s: %w", s, err)
		}
	}
	if err := o.Check(); err != nil {
		return Spec{}, fmt.Errorf("-o %s: %w", s, err)
	}
	return o, nil
}

// set sets the field of key k (one of outputKeys) from its text v.
func (o *Spec) set(k, v string) error {
	var b bool
	var err error
	switch k {
	case "name":
		o.Names = nil
		for _, n := range strings.Split(v, ",") {
			if n = strings.TrimSpace(n); n != "" {
				o.Names = append(o.Names, n)
			}
		}
		return nil
	case "compression":
		o.Compression = v
		return nil
	case "compression-level":
		if v == "" {
			o.CompressionLevel = 0
		} else if o.CompressionLevel, err = strconv.Atoi(v); err != nil {
			return fmt.Errorf("compression-level=%q: not a number", v)
		}
		return nil
	}
	if b, err = strconv.ParseBool(v); err != nil {
		return fmt.Errorf("%s=%q: want true or false", k, v)
	}
	switch k {
	case "push":
		o.Push = b
	case "store":
		o.NoStore = !b
	case "tar":
		o.Directory = !b
	case "force-compression":
		o.ForceCompression = b
	case "oci-mediatypes":
		o.MediaTypes = map[bool]string{true: "oci", false: "docker"}[b]
	case "rewrite-timestamp":
		o.KeepTimestamps = !b
	}
	return nil
}

// checkKeys refuses keys that o's type does not take.
func (o Spec) checkKeys(keys []string) error {
	allowed, ok := outputKeys[o.Type]
	if !ok {
		return fmt.Errorf("unknown output type %q (supported: image, registry, oci, docker, local, tar)", o.Type)
	}
	for _, k := range keys {
		if !slices.Contains(allowed, k) {
			if len(allowed) == 0 {
				return fmt.Errorf("type=%s takes only dest=, not %q", o.Type, k)
			}
			return fmt.Errorf("type=%s: unknown key %q (supported: %s)", o.Type, k, strings.Join(append([]string{"dest"}, allowed...), ", "))
		}
	}
	return nil
}

// setKeys are the keys of the fields o sets, for checkKeys.
func (o Spec) setKeys() []string {
	var keys []string
	for k, set := range map[string]bool{
		"name": len(o.Names) > 0, "push": o.Push, "store": o.NoStore, "tar": o.Directory,
		"compression": o.Compression != "", "compression-level": o.CompressionLevel != 0,
		"force-compression": o.ForceCompression, "oci-mediatypes": o.MediaTypes != "", "rewrite-timestamp": o.KeepTimestamps,
	} {
		if set {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	return keys
}

// Check refuses an output whose fields do not go together, whether Parse
// made it or a caller did.
func (o Spec) Check() error {
	if err := o.checkKeys(o.setKeys()); err != nil {
		return err
	}
	switch o.Type {
	case Image, Registry:
		if o.Dest != "" {
			return fmt.Errorf("type=%s takes no dest= (did you mean type=oci or type=docker?)", o.Type)
		}
	case Docker:
		if o.Dest == "" {
			return errors.New("type=docker needs dest=FILE.tar: there is no daemon to load the image into (the local store is type=image)")
		}
	default:
		if o.Dest == "" {
			return fmt.Errorf("type=%s needs dest=", o.Type)
		}
	}
	if o.MediaTypes != "" && o.MediaTypes != "oci" && o.MediaTypes != "docker" {
		return fmt.Errorf("media types %q: want oci or docker", o.MediaTypes)
	}
	_, err := o.ImageOptions(nil)
	return err
}

// ImageOptions are the exporter options an output asks for. Layer times
// are clamped to epoch unless KeepTimestamps.
func (o Spec) ImageOptions(epoch *time.Time) (exporter.Options, error) {
	var opts exporter.Options
	var err error
	if opts.Compression, err = exporter.ParseCompression(o.Compression); err != nil {
		return opts, err
	}
	opts.Level = o.CompressionLevel
	opts.ForceCompression = o.ForceCompression
	opts.DockerMediaTypes = o.MediaTypes == "docker" || o.MediaTypes == "" && o.Type == Docker
	if opts.DockerMediaTypes && opts.Compression == exporter.Zstd {
		return opts, errors.New("compression=zstd needs oci-mediatypes=true")
	}
	if !o.KeepTimestamps {
		opts.SourceDateEpoch = epoch
	}
	return opts, nil
}
