package build

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

// CacheSpec is one --cache-to or --cache-from value, in `docker buildx
// build` syntax: type=registry,ref=REF,mode=max; type=local,dest=DIR (or
// src=DIR); type=inline.
type CacheSpec struct {
	// Type is registry, local or inline.
	Type string
	// Attrs are the key=value pairs other than type: ref, dest, src,
	// mode, compression, compression-level, ignore-error.
	Attrs map[string]string
}

// cacheKeys are the keys each cache type accepts besides type, for export
// and for import.
var cacheKeys = map[bool]map[string][]string{
	true: {
		"registry": {"ref", "mode", "compression", "compression-level", "ignore-error", "oci-mediatypes", "image-manifest"},
		"local":    {"dest", "mode", "compression", "compression-level", "ignore-error", "oci-mediatypes", "image-manifest"},
		"inline":   nil,
	},
	false: {
		"registry": {"ref"},
		"local":    {"src", "digest"},
	},
}

// ParseCacheSpec reads a --cache-to (export true) or --cache-from value. A
// value without "=" is a registry reference.
func ParseCacheSpec(s string, export bool) (CacheSpec, error) {
	flag := "--cache-from"
	if export {
		flag = "--cache-to"
	}
	if s != "" && !strings.Contains(s, "=") {
		s = "type=registry,ref=" + s
	}
	fields, err := csv.NewReader(strings.NewReader(s)).Read()
	if err != nil {
		return CacheSpec{}, fmt.Errorf("%s %s: %w", flag, s, err)
	}
	c := CacheSpec{Attrs: map[string]string{}}
	for _, f := range fields {
		k, v, ok := strings.Cut(f, "=")
		if !ok {
			return CacheSpec{}, fmt.Errorf("%s %s: %q is not key=value", flag, s, f)
		}
		k = strings.ToLower(strings.TrimSpace(k))
		if k == "type" {
			c.Type = v
			continue
		}
		c.Attrs[k] = v
	}
	if err := c.check(export); err != nil {
		return CacheSpec{}, fmt.Errorf("%s %s: %w", flag, s, err)
	}
	return c, nil
}

func (c CacheSpec) check(export bool) error {
	types := cacheKeys[export]
	keys, ok := types[c.Type]
	if !ok {
		if c.Type == "" {
			return errors.New("missing type= (registry, local or inline)")
		}
		if c.Type == "inline" {
			return errors.New("type=inline is for --cache-to; import an inline cache with type=registry,ref=IMAGE")
		}
		return fmt.Errorf("unknown cache type %q (supported: registry, local, inline)", c.Type)
	}
	for k := range c.Attrs {
		if !slices.Contains(keys, k) {
			return fmt.Errorf("type=%s: unknown key %q", c.Type, k)
		}
	}
	switch {
	case c.Type == "registry" && c.Attrs["ref"] == "":
		return errors.New("type=registry needs ref=")
	case c.Type == "local" && export && c.Attrs["dest"] == "":
		return errors.New("type=local needs dest=DIR")
	case c.Type == "local" && !export && c.Attrs["src"] == "":
		return errors.New("type=local needs src=DIR")
	}
	if m := c.Attrs["mode"]; m != "" && m != "min" && m != "max" {
		return fmt.Errorf("mode=%s: want min or max", m)
	}
	if v, ok := c.Attrs["ignore-error"]; ok {
		if _, err := strconv.ParseBool(v); err != nil {
			return fmt.Errorf("ignore-error=%q: want true or false", v)
		}
	}
	_, err := c.layerOptions(nil)
	return err
}

// max reports mode=max: every step's result, not only the image's.
func (c CacheSpec) max() bool { return c.Attrs["mode"] == "max" }

// layerOptions are how the cache's layer blobs are written: as an image
// output with the same compression would write them, so that an importer
// exporting that image gets the same blobs.
func (c CacheSpec) layerOptions(epoch *time.Time) (exporter.Options, error) {
	var o exporter.Options
	var err error
	if o.Compression, err = exporter.ParseCompression(c.Attrs["compression"]); err != nil {
		return o, err
	}
	if v := c.Attrs["compression-level"]; v != "" {
		if o.Level, err = strconv.Atoi(v); err != nil {
			return o, fmt.Errorf("compression-level=%q: not a number", v)
		}
	}
	o.SourceDateEpoch = epoch
	return o, nil
}
