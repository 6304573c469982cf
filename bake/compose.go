package bake

import (
	"fmt"
	"github.com/builder-dev/builder/bake/spec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"

	"gopkg.in/yaml.v3"
)

// The build sections of a compose file: what bake reads of it.
type composeFile struct {
	Services map[string]composeService `yaml:"services"`
	Secrets  map[string]struct {
		File        string `yaml:"file"`
		Environment string `yaml:"environment"`
	} `yaml:"secrets"`
}

type composeService struct {
	Image string        `yaml:"image"`
	Build *composeBuild `yaml:"build"`
}

type composeBuild struct {
	Context            string      `yaml:"context"`
	Dockerfile         string      `yaml:"dockerfile"`
	DockerfileInline   string      `yaml:"dockerfile_inline"`
	Args               kvList      `yaml:"args"`
	Labels             kvList      `yaml:"labels"`
	AdditionalContexts kvList      `yaml:"additional_contexts"`
	ExtraHosts         kvList      `yaml:"extra_hosts"`
	Target             string      `yaml:"target"`
	Tags               []string    `yaml:"tags"`
	CacheFrom          []string    `yaml:"cache_from"`
	CacheTo            []string    `yaml:"cache_to"`
	Platforms          []string    `yaml:"platforms"`
	Network            string      `yaml:"network"`
	ShmSize            string      `yaml:"shm_size"`
	NoCache            *bool       `yaml:"no_cache"`
	Pull               *bool       `yaml:"pull"`
	SSH                kvList      `yaml:"ssh"`
	Secrets            []yaml.Node `yaml:"secrets"`
	// XBake holds bake attributes compose lacks (buildx's extension).
	XBake map[string]yaml.Node `yaml:"x-bake"`
}

// UnmarshalYAML takes the short form `build: DIR` too.
func (b *composeBuild) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind == yaml.ScalarNode {
		b.Context = n.Value
		return nil
	}
	type plain composeBuild
	return n.Decode((*plain)(b))
}

// kvList is a compose mapping given as a map or as a list of KEY=VALUE
// (extra_hosts also HOST:IP); a key without a value is nil.
type kvList map[string]*string

func (l *kvList) UnmarshalYAML(n *yaml.Node) error {
	*l = kvList{}
	switch n.Kind {
	case yaml.MappingNode:
		m := map[string]*string{}
		if err := n.Decode(&m); err != nil {
			return err
		}
		for k, v := range m {
			(*l)[k] = v
		}
	case yaml.SequenceNode:
		var items []string
		if err := n.Decode(&items); err != nil {
			return err
		}
		for _, it := range items {
			k, v, ok := strings.Cut(it, "=")
			if !ok {
				k, v, ok = strings.Cut(it, ":")
			}
			if ok {
				(*l)[k] = &v
			} else {
				(*l)[k] = nil
			}
		}
	default:
		return fmt.Errorf("line %d: want a mapping or a list of KEY=VALUE", n.Line)
	}
	return nil
}

// values is l without keys that have no value; for args a key without a
// value takes the environment's, as compose.
func (l kvList) values(env map[string]string) map[string]string {
	if l == nil {
		return nil
	}
	m := map[string]string{}
	for k, v := range l {
		switch {
		case v != nil:
			m[k] = *v
		case env != nil:
			if e, ok := env[k]; ok {
				m[k] = e
			}
		}
	}
	return m
}

// loadCompose adds a target for each service of a compose file that has a
// build section (a "default" group holds them all). Paths are relative to
// the compose file's directory, as compose.
func loadCompose(c *Config, name string, src []byte, env map[string]string) error {
	src, err := interpolate(src, env)
	if err != nil {
		return fmt.Errorf("bake: %s: %w", name, err)
	}
	var f composeFile
	if err := yaml.Unmarshal(src, &f); err != nil {
		return fmt.Errorf("bake: %s: %w", name, err)
	}
	dir := filepath.Dir(name)
	var names []string
	for svc := range f.Services {
		names = append(names, svc)
	}
	sort.Strings(names)
	g := &Group{}
	for _, svc := range names {
		s := f.Services[svc]
		if s.Build == nil {
			continue
		}
		t, err := composeTarget(svc, s, &f, dir, env)
		if err != nil {
			return fmt.Errorf("bake: %s: service %s: %w", name, svc, err)
		}
		c.addTarget(t)
		g.Targets = append(g.Targets, svc)
	}
	c.addGroup("default", g)
	return nil
}

func composeTarget(name string, s composeService, f *composeFile, dir string, env map[string]string) (*Target, error) {
	b := s.Build
	t := &Target{Name: name, Args: b.Args.values(env), Labels: b.Labels.values(nil),
		Contexts: b.AdditionalContexts.values(nil), ExtraHosts: b.ExtraHosts.values(nil),
		Tags: b.Tags, CacheFrom: b.CacheFrom, CacheTo: b.CacheTo, Platforms: b.Platforms,
		NoCache: b.NoCache, Pull: b.Pull}
	ctx := b.Context
	if ctx == "" {
		ctx = "."
	}
	if !filepath.IsAbs(ctx) && !strings.Contains(ctx, "://") {
		ctx = filepath.Join(dir, ctx)
	}
	t.Context = &ctx
	for _, p := range []struct {
		v   string
		dst **string
	}{{b.Dockerfile, &t.Dockerfile}, {b.DockerfileInline, &t.DockerfileInline}, {b.Target, &t.Target}, {b.Network, &t.Network}, {b.ShmSize, &t.ShmSize}} {
		if p.v != "" {
			*p.dst = ptr(p.v)
		}
	}
	for k, v := range b.SSH {
		if v == nil {
			t.SSH = append(t.SSH, k)
		} else {
			t.SSH = append(t.SSH, k+"="+*v)
		}
	}
	sort.Strings(t.SSH)
	for _, n := range b.Secrets {
		s, err := composeSecret(n, f)
		if err != nil {
			return nil, err
		}
		t.Secrets = append(t.Secrets, s)
	}
	if err := xBake(t, b.XBake); err != nil {
		return nil, err
	}
	// The image name is the tag only when nothing else names one, as buildx.
	if len(t.Tags) == 0 && s.Image != "" {
		t.Tags = []string{s.Image}
	}
	return t, nil
}

// xBake applies a build section's x-bake fields, bake attributes by their
// bake names: lists add to compose's (a string is a space-separated list),
// maps add keys, scalars replace, as buildx.
func xBake(t *Target, fields map[string]yaml.Node) error {
	x := &Target{}
	xv := reflect.ValueOf(x).Elem()
	for name, n := range fields {
		i, ok := spec.Fields[name]
		if !ok || name == "inherits" {
			return fmt.Errorf("x-bake: unknown field %q", name)
		}
		f := xv.Field(i)
		var err error
		switch f.Interface().(type) {
		case []string:
			var one string
			if n.Kind == yaml.ScalarNode {
				err = n.Decode(&one)
				f.Set(reflect.ValueOf(strings.Fields(one)))
				break
			}
			err = n.Decode(f.Addr().Interface())
		default:
			err = n.Decode(f.Addr().Interface())
		}
		if err != nil {
			return fmt.Errorf("x-bake: %s: %w", name, err)
		}
	}
	for i := range xv.NumField() {
		if f := xv.Field(i); f.Kind() == reflect.Slice && !f.IsNil() {
			f.Set(reflect.ValueOf(spec.AppendNew(slices.Clone(reflect.ValueOf(t).Elem().Field(i).Interface().([]string)), f.Interface().([]string))))
		}
	}
	spec.Merge(t, x)
	return nil
}

// composeSecret is a build secret (a name, or {source, target}) as a
// --secret value, from the top-level secrets section.
func composeSecret(n yaml.Node, f *composeFile) (string, error) {
	var ref struct{ Source, Target string }
	if n.Kind == yaml.ScalarNode {
		ref.Source = n.Value
	} else if err := n.Decode(&ref); err != nil {
		return "", err
	}
	id := ref.Target
	if id == "" {
		id = ref.Source
	}
	def, ok := f.Secrets[ref.Source]
	switch {
	case !ok:
		return "", fmt.Errorf("secret %q is not defined in the top-level secrets", ref.Source)
	case def.File != "":
		return "id=" + id + ",src=" + def.File, nil
	case def.Environment != "":
		return "id=" + id + ",env=" + def.Environment, nil
	}
	return "", fmt.Errorf("secret %q: want file or environment", ref.Source)
}

// interpolation is compiled on first use, not at every command's start-up.
var interpolation = sync.OnceValue(func() *regexp.Regexp {
	return regexp.MustCompile(`\$\$|\$\{([^}]*)\}|\$([A-Za-z_][A-Za-z0-9_]*)`)
})

// interpolate replaces compose's ${VAR}, $VAR, ${VAR:-default},
// ${VAR-default}, ${VAR:?error} and ${VAR?error} with values from env;
// $$ is a literal $.
func interpolate(src []byte, env map[string]string) ([]byte, error) {
	var err error
	out := interpolation().ReplaceAllFunc(src, func(m []byte) []byte {
		if string(m) == "$$" {
			return []byte("$")
		}
		expr := strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(string(m), "$"), "{"), "}")
		i := strings.IndexAny(expr, ":-?")
		if i < 0 {
			return []byte(env[expr])
		}
		name, op := expr[:i], expr[i:]
		v, set := env[name]
		empty := !set || (strings.HasPrefix(op, ":") && v == "")
		op = strings.TrimPrefix(op, ":")
		switch {
		case !empty:
			return []byte(v)
		case strings.HasPrefix(op, "-"):
			return []byte(op[1:])
		case strings.HasPrefix(op, "?"):
			if err == nil {
				err = fmt.Errorf("variable %s is required: %s", name, op[1:])
			}
			return nil
		}
		return []byte(v)
	})
	return out, err
}
