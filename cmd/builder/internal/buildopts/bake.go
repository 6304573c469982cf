package buildopts

import (
	"cmp"
	"path/filepath"
	"slices"

	"github.com/builder-dev/builder/bake"
	"github.com/spf13/pflag"
)

// BakeWide are the flags of `bake` that apply to every target.
type BakeWide struct {
	Allow               []string
	NoCache, Pull, Load bool
	Progress            string
	Parallelism         int
}

// FromBake are the flags a bake target stands for, with bake's own flags
// w applied; the other flags have their defaults.
func FromBake(t *bake.Target, w BakeWide) *Flags {
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
	f.Buildx.AddHosts, f.Buildx.Annotations, f.Buildx.Attest = Pairs(t.ExtraHosts), t.Annotations, t.Attest
	f.Buildx.Call = cmp.Or(str(t.Call), f.Buildx.Call)
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
	f.Progress, f.Allow, f.Parallelism = w.Progress, slices.Concat(w.Allow, f.Allow), w.Parallelism
	f.Buildx.Pull = f.Buildx.Pull || w.Pull
	f.NoCache = f.NoCache || w.NoCache
	f.Buildx.Load = f.Buildx.Load || w.Load
	f.Check = f.Buildx.Call == "check"
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
