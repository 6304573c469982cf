package buildopts

import (
	"path/filepath"

	"github.com/builder-dev/builder/bake"
	"github.com/spf13/pflag"
)

// FromBake are the flags a bake target stands for; the other flags have
// their defaults.
func FromBake(t *bake.Target) *Flags {
	f := &Flags{}
	Add(pflag.NewFlagSet("bake", pflag.ContinueOnError), f) // the defaults
	f.Allow = t.Entitlements
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	if t.Dockerfile != nil {
		f.File = *t.Dockerfile
		if !filepath.IsAbs(f.File) {
			f.File = filepath.Join(*t.Context, f.File)
		}
	}
	f.Target, f.Tags, f.CacheFrom, f.CacheTo = str(t.Target), t.Tags, t.CacheFrom, t.CacheTo
	f.Secrets, f.SSH, f.NoCacheFilter = t.Secrets, t.SSH, t.NoCacheFilter
	f.BuildArgs, f.Contexts, f.Buildx.Labels = Pairs(t.Args), Pairs(t.Contexts), Pairs(t.Labels)
	f.Buildx.AddHosts, f.Buildx.Annotations = Pairs(t.ExtraHosts), t.Annotations
	f.Buildx.Platforms, f.Buildx.Ulimits, f.Buildx.ShmSize = t.Platforms, t.Ulimits, str(t.ShmSize)
	if t.Network != nil {
		f.Network = *t.Network
	}
	if t.Pull != nil {
		f.Buildx.Pull = *t.Pull
	}
	if t.NoCache != nil && *t.NoCache {
		f.NoCache = true
	}
	for _, o := range t.Outputs {
		if o == "type=docker" { // no dest: buildx loads it
			f.Buildx.Load = true
		} else {
			f.Outputs = append(f.Outputs, o)
		}
	}
	return f
}

// Pairs turns a map into KEY=VALUE flag values.
func Pairs(m map[string]string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	return out
}
