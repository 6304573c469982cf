package bake

import (
	"fmt"
	"github.com/builder-dev/builder/bake/spec"
	"path"
	"reflect"
	"strconv"
	"strings"
)

// setAliases are the --set keys buildx spells differently from the file
// attribute.
var setAliases = map[string]string{"platform": "platforms", "secrets": "secret", "outputs": "output"}

// applyOverrides applies --set values: TARGET.KEY=VALUE or
// TARGET.KEY+=VALUE (append), TARGET a name or a pattern such as "*";
// KEY an attribute, or args.NAME, labels.NAME, contexts.NAME,
// extra-hosts.NAME; push=true and load=true add an output as buildx.
func applyOverrides(targets []*Target, overrides []string) error {
	for _, o := range overrides {
		kv, value, ok := strings.Cut(o, "=")
		if !ok {
			return fmt.Errorf("--set %q: want TARGET.KEY=VALUE", o)
		}
		appendTo := strings.HasSuffix(kv, "+")
		kv = strings.TrimSuffix(kv, "+")
		pattern, key, ok := strings.Cut(kv, ".")
		if !ok {
			return fmt.Errorf("--set %q: want TARGET.KEY=VALUE", o)
		}
		matched := false
		for _, t := range targets {
			m, err := path.Match(pattern, t.Name)
			if err != nil {
				return fmt.Errorf("--set %q: bad target pattern: %w", o, err)
			}
			if !m {
				continue
			}
			matched = true
			if err := set(t, key, value, appendTo); err != nil {
				return fmt.Errorf("--set %q: %w", o, err)
			}
		}
		if !matched {
			return fmt.Errorf("--set %q: no target to build matches %q", o, pattern)
		}
	}
	return nil
}

func set(t *Target, key, value string, appendTo bool) error {
	switch key {
	case "push", "load":
		b, err := strconv.ParseBool(value)
		if err != nil {
			return fmt.Errorf("%s: %q is not a bool", key, value)
		}
		if b {
			typ := map[string]string{"push": "registry", "load": "docker"}[key]
			t.Outputs = append(t.Outputs, "type="+typ)
		}
		return nil
	}
	name, sub, _ := strings.Cut(key, ".")
	if a, ok := setAliases[name]; ok {
		name = a
	}
	i, ok := spec.Fields[name]
	if !ok || name == "inherits" {
		return fmt.Errorf("unknown key %q", key)
	}
	f := reflect.ValueOf(t).Elem().Field(i)
	switch f.Interface().(type) {
	case map[string]string:
		if sub == "" {
			return fmt.Errorf("%s: want %s.NAME=VALUE", key, name)
		}
		if f.IsNil() {
			f.Set(reflect.ValueOf(map[string]string{}))
		}
		f.SetMapIndex(reflect.ValueOf(sub), reflect.ValueOf(value))
		return nil
	}
	if sub != "" {
		return fmt.Errorf("unknown key %q", key)
	}
	switch f.Interface().(type) {
	case *string:
		f.Set(reflect.ValueOf(ptr(value)))
	case *bool:
		b, err := strconv.ParseBool(value)
		if err != nil {
			return fmt.Errorf("%s: %q is not a bool", key, value)
		}
		f.Set(reflect.ValueOf(ptr(b)))
	case []string:
		l := []string{value}
		if name == "platforms" || name == "no-cache-filter" {
			l = strings.Split(value, ",")
		}
		if name == "attest" { // as buildx: one of each type, the last
			l = spec.MergeByType(f.Interface().([]string), l)
		} else if appendTo {
			l = append(f.Interface().([]string), l...)
		}
		f.Set(reflect.ValueOf(l))
	}
	return nil
}
