package remote

import (
	"encoding/csv"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/builder-dev/builder/exporter"
	"github.com/docker/go-units"
	"github.com/opencontainers/go-digest"
)

// Type is where a cache is kept.
type Type string

const (
	// TypeRegistry is a cache manifest in a registry (ref=).
	TypeRegistry Type = "registry"
	// TypeLocal is a cache manifest in an OCI layout directory (dest=,
	// src=).
	TypeLocal Type = "local"
	// TypeInline is the cache config in the built image's config; export
	// only (import it with TypeRegistry and the image's reference).
	TypeInline Type = "inline"
)

// Spec is one --cache-to or --cache-from value, in `docker buildx build`
// syntax: type=registry,ref=REF,mode=max; type=local,dest=DIR (or
// src=DIR); type=inline.
type Spec struct {
	Type Type
	// Ref is the registry reference of TypeRegistry.
	Ref string
	// Dir is the OCI layout directory of TypeLocal: dest= for an export,
	// src= for an import.
	Dir string
	// Digest picks the manifest of an import from TypeLocal (digest=);
	// empty means the last one index.json lists. It is checked when read.
	Digest digest.Digest
	// Max exports every step's result (mode=max), not only those in the
	// image's layer chain (mode=min).
	Max bool
	// Compression (exporter.Gzip, Zstd or Uncompressed; empty is gzip) and
	// Level are how the layer blobs are written.
	Compression string
	Level       int
	// IgnoreError makes a failed export a warning.
	IgnoreError bool
	// CacheMounts exports the build's RUN --mount=type=cache directories
	// too (cache-mounts=true); those over CacheMountsMaxSize bytes
	// (cache-mounts-max-size=, 0 for DefaultCacheMountsMaxSize) are left
	// out with a warning.
	CacheMounts        bool
	CacheMountsMaxSize int64
}

// specKeys are the keys each cache type accepts besides type, for export
// and for import. oci-mediatypes and image-manifest are accepted for
// buildx compatibility and ignored: the cache is always an OCI image
// manifest.
var specKeys = map[bool]map[Type][]string{
	true: {
		TypeRegistry: {"ref", "mode", "compression", "compression-level", "ignore-error", "oci-mediatypes", "image-manifest", "cache-mounts", "cache-mounts-max-size"},
		TypeLocal:    {"dest", "mode", "compression", "compression-level", "ignore-error", "oci-mediatypes", "image-manifest", "cache-mounts", "cache-mounts-max-size"},
		TypeInline:   nil,
	},
	false: {
		TypeRegistry: {"ref"},
		TypeLocal:    {"src", "digest"},
	},
}

// ParseSpec reads a --cache-to (export true) or --cache-from value. A
// value without "=" is a registry reference.
func ParseSpec(s string, export bool) (Spec, error) {
	flag := "--cache-from"
	if export {
		flag = "--cache-to"
	}
	if s != "" && !strings.Contains(s, "=") {
		s = "type=registry,ref=" + s
	}
	fields, err := csv.NewReader(strings.NewReader(s)).Read()
	if err != nil {
		return Spec{}, fmt.Errorf("%s %s: %w", flag, s, err)
	}
	var typ Type
	attrs := map[string]string{}
	for _, f := range fields {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return Spec{}, fmt.Errorf("%s %s: %q is not key=value", flag, s, f)
		}
		k = strings.ToLower(strings.TrimSpace(k))
		if k == "type" {
			typ = Type(v)
			continue
		}
		attrs[k] = v
	}
	c, err := specFrom(typ, attrs, export)
	if err != nil {
		return Spec{}, fmt.Errorf("%s %s: %w", flag, s, err)
	}
	return c, nil
}

// specFrom checks the key=value pairs of a spec of type typ and reads them.
func specFrom(typ Type, attrs map[string]string, export bool) (Spec, error) {
	c := Spec{Type: typ, Ref: attrs["ref"], Dir: attrs["src"], Digest: digest.Digest(attrs["digest"])}
	if export {
		c.Dir = attrs["dest"]
	}
	if err := c.checkType(export); err != nil {
		return Spec{}, err
	}
	for k := range attrs {
		if !slices.Contains(specKeys[export][typ], k) {
			return Spec{}, fmt.Errorf("type=%s: unknown key %q", typ, k)
		}
	}
	if err := c.checkWhere(export); err != nil {
		return Spec{}, err
	}
	switch m := attrs["mode"]; m {
	case "", "min":
	case "max":
		c.Max = true
	default:
		return Spec{}, fmt.Errorf("mode=%s: want min or max", m)
	}
	if v, ok := attrs["ignore-error"]; ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return Spec{}, fmt.Errorf("ignore-error=%q: want true or false", v)
		}
		c.IgnoreError = b
	}
	if err := c.mountOptions(attrs); err != nil {
		return Spec{}, err
	}
	var err error
	if c.Compression, err = exporter.ParseCompression(attrs["compression"]); err != nil {
		return Spec{}, err
	}
	if v := attrs["compression-level"]; v != "" {
		if c.Level, err = strconv.Atoi(v); err != nil {
			return Spec{}, fmt.Errorf("compression-level=%q: not a number", v)
		}
	}
	return c, nil
}

// mountOptions reads cache-mounts= and cache-mounts-max-size=.
func (c *Spec) mountOptions(attrs map[string]string) error {
	if v, ok := attrs["cache-mounts"]; ok {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return fmt.Errorf("cache-mounts=%q: want true or false", v)
		}
		c.CacheMounts = b
	}
	if v, ok := attrs["cache-mounts-max-size"]; ok {
		n, err := units.RAMInBytes(v)
		if err != nil || n <= 0 {
			return fmt.Errorf("cache-mounts-max-size=%q: want a size such as 512m or 2g", v)
		}
		c.CacheMountsMaxSize = n
	}
	return nil
}

// check tells whether c can be imported (export false) or exported: a
// Spec made by a caller rather than ParseSpec is checked before use.
func (c Spec) check(export bool) error {
	if err := c.checkType(export); err != nil {
		return err
	}
	if err := c.checkWhere(export); err != nil {
		return err
	}
	if export {
		if _, err := exporter.ParseCompression(c.Compression); err != nil {
			return err
		}
	}
	return nil
}

func (c Spec) checkType(export bool) error {
	if _, ok := specKeys[export][c.Type]; ok {
		return nil
	}
	switch c.Type {
	case "":
		return errors.New("missing type= (registry, local or inline)")
	case TypeInline:
		return errors.New("type=inline is for --cache-to; import an inline cache with type=registry,ref=IMAGE")
	}
	return fmt.Errorf("unknown cache type %q (supported: registry, local, inline)", c.Type)
}

// checkWhere checks that c says where the cache is.
func (c Spec) checkWhere(export bool) error {
	switch {
	case c.Type == TypeRegistry && c.Ref == "":
		return errors.New("type=registry needs ref=")
	case c.Type == TypeLocal && export && c.Dir == "":
		return errors.New("type=local needs dest=DIR")
	case c.Type == TypeLocal && !export && c.Dir == "":
		return errors.New("type=local needs src=DIR")
	}
	return nil
}

// layerOptions are how the cache's layer blobs are written: as an image
// output with the same compression and OCI media types would write them,
// so that an importer exporting that image gets the same blobs.
func (c Spec) layerOptions(epoch *time.Time) exporter.Options {
	return exporter.Options{Compression: c.Compression, Level: c.Level, SourceDateEpoch: epoch}
}
