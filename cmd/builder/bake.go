package main

import (
	"encoding/json"
	"fmt"
	"os"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/builder-dev/builder/bake"
	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/cmd/builder/internal/buildopts"
	"github.com/builder-dev/builder/progress"
	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"
)

type bakeFlags struct {
	files, sets, allow               []string
	print, noCache, pull, push, load bool
	progress, metadataFile           string
}

func newBakeCommand(g *globalOptions) *cobra.Command {
	f := &bakeFlags{}
	cmd := &cobra.Command{
		Use:   "bake [OPTIONS] [TARGET...]",
		Short: "Build the targets of docker-bake.hcl, docker-bake.json or compose.yaml",
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBake(cmd, g, f, args)
		},
		ValidArgsFunction: func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			files, err := bake.Files(".", f.files)
			if err != nil {
				return nil, cobra.ShellCompDirectiveError
			}
			cfg, err := bake.Load(files, bake.Environ())
			if err != nil {
				return nil, cobra.ShellCompDirectiveError
			}
			return cfg.Names(), cobra.ShellCompDirectiveNoFileComp
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
func runBake(cmd *cobra.Command, g *globalOptions, bf *bakeFlags, names []string) error {
	files, err := bake.Files(".", bf.files)
	if err != nil {
		return err
	}
	cfg, err := bake.Load(files, bake.Environ())
	if err != nil {
		return err
	}
	sets := bf.sets
	if bf.push {
		sets = append(sets, "*.push=true")
	}
	targets, err := cfg.Resolve(names, sets)
	if err != nil {
		return err
	}
	if bf.print {
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
	metadata, err := buildTargets(cmd, g, st, bf, targets)
	if err != nil || bf.metadataFile == "" {
		return err
	}
	b, err := json.MarshalIndent(metadata, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(bf.metadataFile, append(b, '\n'), 0o644)
}

// buildTargets builds the first target, then the others at once, on one
// state directory: a stage they share with the first ran with it and is a
// cache hit for them. With several targets, each output line on stderr
// starts with its target's name.
func buildTargets(cmd *cobra.Command, g *globalOptions, st *build.State, bf *bakeFlags, targets []*bake.Target) (map[string]any, error) {
	metadata := map[string]any{}
	var mu sync.Mutex
	lines := progress.NewLines(cmd.ErrOrStderr())
	many := *bf
	if many.progress == "tty" {
		many.progress = "plain" // a live display per target cannot share the terminal
	}
	run := func(t *bake.Target) error {
		c, f := cmd, bf
		if len(targets) > 1 {
			c, f = &cobra.Command{}, &many
			c.SetContext(cmd.Context())
			c.SetIn(cmd.InOrStdin())
			c.SetOut(cmd.OutOrStdout())
			c.SetErr(lines.Prefixed("[" + t.Name + "] "))
		}
		md, err := bakeTarget(c, g, st, f, t)
		if err != nil {
			return fmt.Errorf("target %s: %w", t.Name, err)
		}
		mu.Lock()
		defer mu.Unlock()
		metadata[t.Name] = md
		return nil
	}
	if err := run(targets[0]); err != nil {
		return nil, err
	}
	var eg errgroup.Group
	for _, t := range targets[1:] {
		eg.Go(func() error { return run(t) })
	}
	return metadata, eg.Wait()
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
		df, f.File = []byte(*t.DockerfileInline), "-"
	} else if df, dfName, err = f.Dockerfile(nil, contextDir); err != nil {
		return nil, err
	}
	opt, err := f.Options(contextDir, df, dfName)
	if err != nil {
		return nil, err
	}
	load, err := prepareLoad(f, &opt)
	if err != nil {
		return nil, err
	}
	defer load.cleanup()
	run, err := newBuildRun(cmd.ErrOrStderr(), f.Progress)
	if err != nil {
		return nil, err
	}
	run.wire(cmd, &opt)
	res, err := st.Build(cmd.Context(), opt)
	run.gate.Close(err)
	recordBuild(cmd, g, newHistoryRecord(f, contextDir, buildopts.DockerfilePath(dfName, f.File), df, start), run.rec, res, err)
	printChecks(cmd.ErrOrStderr(), f.Progress, run.checks)
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

// targetFlags are the `builder build` flags a bake target stands for,
// with bake's own flags applied to every target.
func targetFlags(t *bake.Target, bf *bakeFlags) *buildopts.Flags {
	f := buildopts.FromBake(t)
	f.Progress, f.Allow = bf.progress, slices.Concat(bf.allow, f.Allow)
	f.Buildx.Pull = f.Buildx.Pull || bf.pull
	f.NoCache = f.NoCache || bf.noCache
	f.Buildx.Load = f.Buildx.Load || bf.load
	return f
}
