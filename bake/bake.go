// Package bake reads the build definitions of `docker buildx bake`:
// docker-bake.hcl, docker-bake.json and the build sections of compose
// files. It resolves targets (inherits, groups, variables, --set) into
// plain values; running the builds is the caller's job.
package bake

import (
	"encoding/json"
	"fmt"
	"github.com/builder-dev/builder/bake/hclfile"
	"github.com/builder-dev/builder/bake/spec"
	"io"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
)

// DefaultFiles are the files bake reads when none is named, in buildx's
// lookup order; every one that exists is read, later ones overriding.
var DefaultFiles = []string{
	"compose.yaml", "compose.yml", "docker-compose.yml", "docker-compose.yaml",
	"docker-bake.json", "docker-bake.hcl",
	"docker-bake.override.json", "docker-bake.override.hcl",
}

// Target is one image to build (see spec.Target).
type Target = spec.Target

// Group names targets (or other groups) built together.
type Group = spec.Group

// Variable is a variable of the bake files with its value.
type Variable = spec.Variable

// Config is everything the files define.
type Config struct {
	Targets map[string]*Target
	Groups  map[string]*Group
	// Variables are the HCL files' variables with their values.
	Variables []Variable
}

func newConfig() *Config {
	return &Config{Targets: map[string]*Target{}, Groups: map[string]*Group{}}
}

// addTarget merges t into the target of the same name, if any: a target
// defined again (in a later file) overrides the attributes it sets.
func (c *Config) addTarget(t *Target) {
	if old, ok := c.Targets[t.Name]; ok {
		spec.Merge(old, t)
		if t.Inherits != nil {
			old.Inherits = t.Inherits
		}
		return
	}
	c.Targets[t.Name] = t
}

func (c *Config) addGroup(name string, g *Group) {
	if old, ok := c.Groups[name]; ok {
		if g.Description != "" {
			old.Description = g.Description
		}
		old.Targets = spec.AppendNew(old.Targets, g.Targets)
		return
	}
	c.Groups[name] = g
}

// Files are the definition files bake reads: names if given, else those of
// DefaultFiles that exist in dir.
func Files(dir string, names []string) ([]string, error) {
	if len(names) > 0 {
		return names, nil
	}
	var out []string
	for _, n := range DefaultFiles {
		if _, err := os.Stat(filepath.Join(dir, n)); err == nil {
			out = append(out, filepath.Join(dir, n))
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("no bake definition in %s: looked for %s", dir, strings.Join(DefaultFiles, ", "))
	}
	return out, nil
}

// Load reads files (HCL, JSON or compose, told apart by their names and
// content) into one Config, later files overriding earlier ones. env
// overrides variables (the process environment, as buildx).
func Load(files []string, env map[string]string) (*Config, error) {
	c := newConfig()
	var hclFiles []hclfile.Source
	for _, name := range files {
		src, err := os.ReadFile(name)
		if err != nil {
			return nil, fmt.Errorf("bake: %w", err)
		}
		if isCompose(name, src) {
			if err := loadCompose(c, name, src, env); err != nil {
				return nil, err
			}
			continue
		}
		hclFiles = append(hclFiles, hclfile.Source{Name: name, Src: src})
	}
	if len(hclFiles) > 0 {
		vars, err := hclfile.Load(hclFiles, env, hclfile.Sink{Target: c.addTarget, Group: c.addGroup})
		if err != nil {
			return nil, err
		}
		c.Variables = vars
	}
	return c, nil
}

// LoadDir loads the files named, or those of DefaultFiles in dir, with
// the process environment.
func LoadDir(dir string, names []string) (*Config, error) {
	files, err := Files(dir, names)
	if err != nil {
		return nil, err
	}
	return Load(files, Environ())
}

// Environ is the process environment as a map, for Load.
func Environ() map[string]string {
	env := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	return env
}

// isCompose tells a compose file from a bake file: by its name, or for a
// name of neither kind by a top-level "services" key.
func isCompose(name string, src []byte) bool {
	base := filepath.Base(name)
	switch {
	case strings.HasSuffix(base, ".hcl"):
		return false
	case strings.HasSuffix(base, ".yaml"), strings.HasSuffix(base, ".yml"):
		return true
	case strings.HasSuffix(base, ".json"):
		var top map[string]json.RawMessage
		if json.Unmarshal(src, &top) != nil {
			return false
		}
		_, ok := top["services"]
		return ok
	}
	return false
}

// Resolve expands names (targets or groups; "default" when none) into the
// targets to build, each with its inherited attributes merged in and the
// overrides applied, in the order named.
func (c *Config) Resolve(names []string, overrides []string) ([]*Target, error) {
	if len(names) == 0 {
		names = []string{"default"}
	}
	var flat []string
	for _, n := range names {
		if err := c.expand(n, &flat, nil); err != nil {
			return nil, err
		}
	}
	var out []*Target
	for _, n := range flat {
		t, err := c.inherited(n, nil)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	if err := applyOverrides(out, overrides); err != nil {
		return nil, err
	}
	for _, t := range out {
		t.Inherits = nil
		if t.Context == nil {
			t.Context = ptr(".")
		}
		if t.Dockerfile == nil && t.DockerfileInline == nil {
			t.Dockerfile = ptr("Dockerfile")
		}
	}
	return out, nil
}

// expand appends the targets name stands for to out, once each; seen
// guards against groups that contain themselves.
func (c *Config) expand(name string, out *[]string, seen []string) error {
	if slices.Contains(seen, name) {
		return fmt.Errorf("bake: group %q contains itself (via %s)", name, strings.Join(seen, " -> "))
	}
	if g, ok := c.Groups[name]; ok {
		for _, t := range g.Targets {
			if err := c.expand(t, out, append(seen, name)); err != nil {
				return err
			}
		}
		return nil
	}
	if _, ok := c.Targets[name]; !ok {
		return fmt.Errorf("bake: no target or group named %q (targets: %s)", name, strings.Join(c.targetNames(), ", "))
	}
	if !slices.Contains(*out, name) {
		*out = append(*out, name)
	}
	return nil
}

// Names are the targets' and groups' names, sorted (for completion).
func (c *Config) Names() []string {
	names := c.targetNames()
	for g := range c.Groups {
		names = append(names, g)
	}
	sort.Strings(names)
	return names
}

func (c *Config) targetNames() []string {
	names := make([]string, 0, len(c.Targets))
	for n := range c.Targets {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// inherited is target name with its parents merged in: parents in the
// order listed, each overridden by the next, then the target itself.
func (c *Config) inherited(name string, seen []string) (*Target, error) {
	if slices.Contains(seen, name) {
		return nil, fmt.Errorf("bake: target %q inherits from itself (via %s)", name, strings.Join(seen, " -> "))
	}
	t, ok := c.Targets[name]
	if !ok {
		return nil, fmt.Errorf("bake: target %q inherits from %q, which is not defined", seen[len(seen)-1], name)
	}
	out := &Target{Name: name}
	for _, p := range t.Inherits {
		parent, err := c.inherited(p, append(seen, name))
		if err != nil {
			return nil, err
		}
		spec.Merge(out, parent)
	}
	spec.Merge(out, t)
	return out, nil
}

func ptr[T any](v T) *T { return &v }

// Print writes the resolved targets as JSON in the shape of
// `docker buildx bake --print`: the groups that names went through (a
// matrix target's label is one), a "default" group of the names asked
// for, and the targets by name.
func (c *Config) Print(w io.Writer, names []string, targets []*Target) error {
	type out struct {
		Group  map[string]*Group  `json:"group,omitempty"`
		Target map[string]*Target `json:"target"`
	}
	o := out{Group: c.groupsOf(names), Target: map[string]*Target{}}
	for _, t := range targets {
		o.Target[t.Name] = t
	}
	return writeJSON(w, o)
}

// groupsOf are the groups names (targets or groups; "default" when none)
// go through, and a "default" group holding names, as buildx prints them.
func (c *Config) groupsOf(names []string) map[string]*Group {
	if len(names) == 0 {
		names = []string{"default"}
	}
	out := map[string]*Group{}
	var walk func(string)
	walk = func(name string) {
		g, ok := c.Groups[name]
		if !ok || out[name] != nil {
			return
		}
		out[name] = &Group{Description: g.Description, Targets: slices.Clone(g.Targets)}
		for _, t := range g.Targets {
			walk(t)
		}
	}
	for _, n := range names {
		walk(n)
	}
	for _, n := range names {
		if n == "default" {
			continue
		}
		if out["default"] == nil {
			out["default"] = &Group{}
		}
		out["default"].Targets = spec.AppendNew(out["default"].Targets, []string{n})
	}
	return out
}
