package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/builder-dev/builder/bake"
	"github.com/builder-dev/builder/build"
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

type bakeFlags struct {
	files        []string
	sets         []string
	print        bool
	noCache      bool
	pull         bool
	push         bool
	load         bool
	progress     string
	metadataFile string
	allow        []string
}

func newBakeCommand(g *globalOptions) *cobra.Command {
	f := &bakeFlags{}
	cmd := &cobra.Command{
		Use:   "bake [OPTIONS] [TARGET...]",
		Short: "Build the targets of docker-bake.hcl, docker-bake.json or compose.yaml",
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBake(cmd, g, f, args)
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVarP(&f.files, "file", "f", nil, "build definition file (repeatable; default: "+strings.Join(bake.DefaultFiles, ", ")+", each that exists)")
	fl.StringArrayVar(&f.sets, "set", nil, "override a target attribute: TARGET.KEY=VALUE or TARGET.KEY+=VALUE, TARGET a name or pattern such as *")
	fl.BoolVar(&f.print, "print", false, "print the resolved build definition as JSON and build nothing")
	fl.BoolVar(&f.noCache, "no-cache", false, "do not use the cache")
	fl.BoolVar(&f.pull, "pull", false, "always resolve FROM images from their registry")
	fl.BoolVar(&f.push, "push", false, "push every target's tags (as --set *.push=true)")
	fl.BoolVar(&f.load, "load", false, "load every target's image into the local Docker or Podman (as --set *.output=type=docker)")
	fl.StringVar(&f.progress, "progress", "auto", "progress output: auto, tty, plain, rawjson or quiet")
	fl.StringVar(&f.metadataFile, "metadata-file", "", "write each target's build result metadata as JSON to this file")
	fl.StringArrayVar(&f.allow, "allow", nil, "grant an entitlement to every target (see builder build --allow)")
	return cmd
}

// runBake builds the targets one after the other in this process, on one
// state directory: a stage that several targets share runs for the first
// and is a cache hit for the others.
func runBake(cmd *cobra.Command, g *globalOptions, f *bakeFlags, names []string) error {
	files, err := bake.Files(".", f.files)
	if err != nil {
		return err
	}
	cfg, err := bake.Load(files, environ())
	if err != nil {
		return err
	}
	sets := f.sets
	if f.push {
		sets = append(sets, "*.push=true")
	}
	targets, err := cfg.Resolve(names, sets)
	if err != nil {
		return err
	}
	if f.print {
		b, err := bake.Print(targets)
		if err != nil {
			return err
		}
		_, err = cmd.OutOrStdout().Write(b)
		return err
	}
	st, err := openState(cmd, g)
	if err != nil {
		return err
	}
	defer st.Close()
	metadata := map[string]any{}
	for _, t := range targets {
		md, err := bakeTarget(cmd, g, st, f, t)
		if err != nil {
			return fmt.Errorf("target %s: %w", t.Name, err)
		}
		metadata[t.Name] = md
	}
	if f.metadataFile == "" {
		return nil
	}
	b, err := json.MarshalIndent(metadata, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(f.metadataFile, append(b, '\n'), 0o644)
}

func environ() map[string]string {
	env := map[string]string{}
	for _, kv := range os.Environ() {
		k, v, _ := strings.Cut(kv, "=")
		env[k] = v
	}
	return env
}

// bakeTarget builds one target as `builder build` would with the flags the
// target stands for, and returns its metadata.
func bakeTarget(cmd *cobra.Command, g *globalOptions, st *build.State, bf *bakeFlags, t *bake.Target) (map[string]any, error) {
	start := time.Now()
	f := targetFlags(t, bf)
	contextDir := *t.Context
	var df []byte
	dfName := "Dockerfile"
	var err error
	if t.DockerfileInline != nil {
		df, f.file = []byte(*t.DockerfileInline), "-"
	} else if df, dfName, err = f.dockerfile(nil, contextDir); err != nil {
		return nil, err
	}
	opt, err := f.options(contextDir, df, dfName)
	if err != nil {
		return nil, err
	}
	load, err := prepareLoad(f, &opt)
	if err != nil {
		return nil, err
	}
	run, err := newBuildRun(cmd.ErrOrStderr(), f.progress)
	if err != nil {
		return nil, err
	}
	run.wire(cmd, &opt)
	res, err := st.Build(cmd.Context(), opt)
	run.gate.Close(err)
	recordBuild(cmd, g, newHistoryRecord(f, contextDir, dockerfilePath(dfName, f.file), df, start), run.rec, res, err)
	printChecks(cmd.ErrOrStderr(), f.progress, run.checks)
	if err != nil {
		return nil, err
	}
	if err := load.finish(cmd); err != nil {
		return nil, err
	}
	if err := reportBuild(cmd, f, res, run.checks); err != nil {
		return nil, err
	}
	return metadataOf(res, run.checks), nil
}

// targetFlags are the `builder build` flags a bake target stands for.
func targetFlags(t *bake.Target, bf *bakeFlags) *buildFlags {
	f := &buildFlags{}
	addBuildFlags(pflag.NewFlagSet("bake", pflag.ContinueOnError), f) // the defaults
	f.progress, f.allow = bf.progress, append(bf.allow, t.Entitlements...)
	f.buildx.pull, f.noCache = bf.pull, bf.noCache
	str := func(p *string) string {
		if p == nil {
			return ""
		}
		return *p
	}
	if t.Dockerfile != nil {
		f.file = *t.Dockerfile
		if !filepath.IsAbs(f.file) {
			f.file = filepath.Join(*t.Context, f.file)
		}
	}
	f.target, f.tags, f.cacheFrom, f.cacheTo = str(t.Target), t.Tags, t.CacheFrom, t.CacheTo
	f.secrets, f.ssh, f.noCacheFilter = t.Secrets, t.SSH, t.NoCacheFilter
	f.buildArgs, f.contexts, f.buildx.labels = pairs(t.Args, "="), pairs(t.Contexts, "="), pairs(t.Labels, "=")
	f.buildx.addHosts, f.buildx.annotations = pairs(t.ExtraHosts, "="), t.Annotations
	f.buildx.platforms, f.buildx.ulimits, f.buildx.shmSize = t.Platforms, t.Ulimits, str(t.ShmSize)
	if t.Network != nil {
		f.network = *t.Network
	}
	if t.Pull != nil {
		f.buildx.pull = *t.Pull
	}
	if t.NoCache != nil && *t.NoCache {
		f.noCache = true
	}
	for _, o := range t.Outputs {
		if o == "type=docker" { // no dest: buildx loads it
			f.buildx.load = true
		} else {
			f.outputs = append(f.outputs, o)
		}
	}
	f.buildx.load = f.buildx.load || bf.load
	return f
}

// pairs are a map's entries as KEY<sep>VALUE flag values.
func pairs(m map[string]string, sep string) []string {
	var out []string
	for k, v := range m {
		out = append(out, k+sep+v)
	}
	return out
}
