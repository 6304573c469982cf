// Package spec holds what a bake definition is made of, whichever file
// format it came from: targets with buildx's attribute names, groups,
// variables, and how a target's attributes merge into another's.
package spec

import (
	"reflect"
	"slices"
	"strings"
)

// Target is one image to build, with buildx's attribute names. Unset
// scalars are nil so that inheritance can tell "unset" from "empty".
type Target struct {
	Name             string            `json:"-"`
	Description      *string           `json:"description,omitempty"`
	Inherits         []string          `json:"inherits,omitempty"`
	Context          *string           `json:"context,omitempty"`
	Contexts         map[string]string `json:"contexts,omitempty"`
	Dockerfile       *string           `json:"dockerfile,omitempty"`
	DockerfileInline *string           `json:"dockerfile-inline,omitempty"`
	Args             map[string]string `json:"args,omitempty"`
	Labels           map[string]string `json:"labels,omitempty"`
	Annotations      []string          `json:"annotations,omitempty" bake:"append"`
	Tags             []string          `json:"tags,omitempty"`
	CacheFrom        []string          `json:"cache-from,omitempty" bake:"append"`
	CacheTo          []string          `json:"cache-to,omitempty" bake:"append"`
	Target           *string           `json:"target,omitempty"`
	Secrets          []string          `json:"secret,omitempty" bake:"append"`
	SSH              []string          `json:"ssh,omitempty" bake:"append"`
	Platforms        []string          `json:"platforms,omitempty"`
	Outputs          []string          `json:"output,omitempty"`
	Pull             *bool             `json:"pull,omitempty"`
	NoCache          *bool             `json:"no-cache,omitempty"`
	NoCacheFilter    []string          `json:"no-cache-filter,omitempty"`
	Network          *string           `json:"network,omitempty"`
	ShmSize          *string           `json:"shm-size,omitempty"`
	Ulimits          []string          `json:"ulimits,omitempty"`
	ExtraHosts       map[string]string `json:"extra-hosts,omitempty"`
	Entitlements     []string          `json:"entitlements,omitempty" bake:"append"`
	Call             *string           `json:"call,omitempty"`
	Attest           []string          `json:"attest,omitempty" bake:"bytype"`
}

// Group names targets (or other groups) built together.
type Group struct {
	Description string   `json:"description,omitempty"`
	Targets     []string `json:"targets"`
}

// Variable is a variable of the bake files with its value (nil: null), as
// `--list=variables` shows it.
type Variable struct {
	Name        string  `json:"name"`
	Description string  `json:"description,omitempty"`
	Value       *string `json:"value,omitempty"`
}

// Fields maps buildx's attribute names to Target's fields.
var Fields = func() map[string]int {
	m := map[string]int{}
	t := reflect.TypeFor[Target]()
	for i := 0; i < t.NumField(); i++ {
		if name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ","); name != "-" {
			m[name] = i
		}
	}
	return m
}()

// Merge sets in dst what src sets: scalars and most lists replace, maps
// merge key by key, and the lists buildx accumulates (cache-from,
// cache-to, secret, ssh, annotations, entitlements) append without
// repeats, and attestations merge by type. Inherits and Name are the
// caller's business.
func Merge(dst, src *Target) {
	dv, sv := reflect.ValueOf(dst).Elem(), reflect.ValueOf(src).Elem()
	for i := 0; i < dv.NumField(); i++ {
		f := dv.Type().Field(i)
		if f.Name == "Name" || f.Name == "Inherits" {
			continue
		}
		d, s := dv.Field(i), sv.Field(i)
		if s.IsNil() {
			continue
		}
		switch f.Type.Kind() {
		case reflect.Map:
			if d.IsNil() {
				d.Set(reflect.MakeMap(f.Type))
			}
			for _, k := range s.MapKeys() {
				d.SetMapIndex(k, s.MapIndex(k))
			}
		case reflect.Slice:
			switch f.Tag.Get("bake") {
			case "append":
				d.Set(reflect.ValueOf(AppendNew(d.Interface().([]string), s.Interface().([]string))))
			case "bytype":
				d.Set(reflect.ValueOf(MergeByType(d.Interface().([]string), s.Interface().([]string))))
			default:
				d.Set(reflect.ValueOf(slices.Clone(s.Interface().([]string))))
			}
		default:
			d.Set(s)
		}
	}
}

// MergeByType merges attestation lists as buildx does: an entry of src
// replaces dst's entry of the same type=, the others are appended.
func MergeByType(dst, src []string) []string {
	out := slices.Clone(dst)
	for _, v := range src {
		i := slices.IndexFunc(out, func(d string) bool { return AttestType(d) == AttestType(v) })
		if i >= 0 {
			out[i] = v
		} else {
			out = append(out, v)
		}
	}
	return out
}

// AttestType is the type= of an attestation such as
// "type=provenance,mode=max".
func AttestType(a string) string {
	for _, kv := range strings.Split(a, ",") {
		if k, v, _ := strings.Cut(kv, "="); strings.TrimSpace(k) == "type" {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

// AppendNew appends to dst the values of src it lacks.
func AppendNew(dst, src []string) []string {
	for _, v := range src {
		if !slices.Contains(dst, v) {
			dst = append(dst, v)
		}
	}
	return dst
}
