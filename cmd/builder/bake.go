package main

import (
	"cmp"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/builder-dev/builder/bake"
	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/cmd/builder/internal/buildopts"
	"github.com/builder-dev/builder/progress"
	"github.com/spf13/cobra"
)

type bakeFlags struct {
	files, sets        []string
	print, push        bool
	metadataFile, list string
	buildopts.BakeWide
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
			cfg, err := bake.LoadDir(".", f.files)
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
	fl.StringVar(&f.list, "list", "", "list the targets or the variables and build nothing: targets, variables, or type=targets|variables,format=table|json")
	fl.BoolVar(&f.NoCache, "no-cache", false, "do not use the cache")
	fl.BoolVar(&f.Pull, "pull", false, "always resolve FROM images from their registry")
	fl.BoolVar(&f.push, "push", false, "push every target's tags (as --set *.push=true)")
	fl.BoolVar(&f.Load, "load", false, "load every target's image into the local Docker or Podman (as --set *.output=type=docker)")
	fl.StringVar(&f.Progress, "progress", "auto", "progress output: auto, tty, plain, rawjson or quiet")
	fl.StringVar(&f.metadataFile, "metadata-file", "", "write each target's build result metadata as JSON to this file")
	fl.IntVar(&f.Parallelism, "parallelism", 0, "how many steps of all targets may run at once (default: the number of CPUs, and more while the running steps wait rather than compute)")
	fl.StringArrayVar(&f.Allow, "allow", nil, "grant an entitlement to every target (see builder build --allow)")
	return cmd
}

// runBake lists, prints or builds the targets (see buildTargets).
func runBake(cmd *cobra.Command, g *globalOptions, bf *bakeFlags, names []string) error {
	cfg, err := bake.LoadDir(".", bf.files)
	if err != nil {
		return err
	}
	if bf.list != "" {
		return cfg.List(cmd.OutOrStdout(), bf.list)
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
		return cfg.Print(cmd.OutOrStdout(), names, targets)
	}
	st, err := openState(cmd, g)
	if err != nil {
		return err
	}
	defer st.Close()
	// The targets that completed are written even when another failed.
	metadata, err := buildTargets(cmd, g, st, bf, targets)
	if bf.metadataFile == "" || metadata == nil {
		return err
	}
	return cmp.Or(err, writeJSONFile(bf.metadataFile, metadata))
}

// bakeJob is one target of a bake on its way through the build.
type bakeJob struct {
	t                  *bake.Target
	cmd                *cobra.Command
	f                  *buildopts.Flags
	contextDir, dfName string
	df                 []byte
	opt                build.Options
	load               *loader
	run                *buildRun
	start              time.Time
}

// buildTargets builds the targets in one solve (build.BuildMany): a stage
// they share runs once, and they run at once. With several targets, each
// output line on stderr starts with its target's name. The first failure
// cancels the others, as buildx does.
func buildTargets(cmd *cobra.Command, g *globalOptions, st *build.State, bf *bakeFlags, targets []*bake.Target) (map[string]any, error) {
	lines := progress.NewLines(cmd.ErrOrStderr())
	many := *bf
	if many.Progress == "tty" {
		many.Progress = "plain" // a live display per target cannot share the terminal
	}
	var jobs []*bakeJob
	var opts []build.Options
	var checkErr error
	for _, t := range targets {
		c, f := cmd, bf
		if len(targets) > 1 {
			c, f = &cobra.Command{}, &many
			c.SetContext(cmd.Context())
			c.SetIn(cmd.InOrStdin())
			c.SetOut(cmd.OutOrStdout())
			c.SetErr(lines.Prefixed("[" + t.Name + "] "))
		}
		j, err := newBakeJob(c, f, t)
		if j != nil && j.load != nil {
			defer j.load.cleanup()
		}
		if err != nil {
			return nil, fmt.Errorf("target %s: %w", t.Name, err)
		}
		if j.f.Check { // call = "check": its checks alone, as `builder build --check`
			fmt.Fprintf(cmd.OutOrStdout(), "target %q\n", t.Name)
			checkErr = cmp.Or(runCheck(cmd.Context(), cmd.OutOrStdout(), st, j.opt), checkErr)
			continue
		}
		jobs, opts = append(jobs, j), append(opts, j.opt)
	}
	if len(opts) == 0 {
		return nil, checkErr
	}
	res, err := st.BuildMany(cmd.Context(), opts)
	failed := -1
	var te *build.TargetError
	if errors.As(err, &te) {
		failed, err = te.Index, te.Err
	}
	metadata := map[string]any{}
	for i, j := range jobs {
		var r *build.Result
		if res != nil {
			r = res[i]
		}
		md, jerr := j.finish(g, r, i == failed, err)
		if jerr != nil && (i == failed || r != nil) {
			jerr = fmt.Errorf("target %s: %w", j.t.Name, jerr)
			if i == failed || err == nil {
				err = jerr
			}
		}
		if md != nil {
			metadata[j.t.Name] = md
		}
	}
	return metadata, cmp.Or(err, checkErr)
}

// newBakeJob turns a target into the options of its build, as `builder
// build` would with the flags the target stands for.
func newBakeJob(cmd *cobra.Command, bf *bakeFlags, t *bake.Target) (*bakeJob, error) {
	j := &bakeJob{t: t, cmd: cmd, f: buildopts.FromBake(t, bf.BakeWide), contextDir: *t.Context, dfName: "Dockerfile", start: time.Now()}
	var err error
	if t.DockerfileInline != nil {
		j.df, j.f.File = []byte(*t.DockerfileInline), "-"
	} else if j.df, j.dfName, err = j.f.Dockerfile(nil, j.contextDir); err != nil {
		return nil, err
	}
	if j.opt, err = j.f.Options(j.contextDir, j.df, j.dfName); err != nil {
		return nil, err
	}
	if j.load, err = prepareLoad(j.f, &j.opt); err != nil {
		return nil, err
	}
	if j.run, err = newBuildRun(cmd.ErrOrStderr(), j.f.Progress); err != nil {
		return j, err
	}
	j.run.wire(cmd, &j.opt)
	return j, nil
}

// finish records a target's build in the history and, if it was built,
// loads and reports it and returns its metadata. buildErr is the bake's
// failure: this target's if failed, else the one that cancelled it.
func (j *bakeJob) finish(g *globalOptions, res *build.Result, failed bool, buildErr error) (map[string]any, error) {
	err := buildErr
	if res == nil && err != nil && !failed {
		err = fmt.Errorf("cancelled: another target failed: %w", buildErr)
	}
	if res != nil {
		err = nil
	}
	j.run.gate.Close(err)
	recordBuild(j.cmd, g, newHistoryRecord(j.f, j.contextDir, buildopts.DockerfilePath(j.dfName, j.f.File), j.df, j.start), j.run.rec, res, err)
	printChecks(j.cmd.ErrOrStderr(), j.f.Progress, j.run.checks)
	if res == nil {
		return nil, err
	}
	if err := j.load.finish(j.cmd); err != nil {
		return nil, err
	}
	if err := reportBuild(j.cmd, j.f, res, j.run.checks); err != nil {
		return nil, err
	}
	return metadataOf(res, j.run.checks), nil
}
