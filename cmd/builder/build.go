package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/cmd/builder/internal/buildopts"
	"github.com/builder-dev/builder/executor"
	"github.com/builder-dev/builder/history"
	"github.com/builder-dev/builder/progress"
	"github.com/spf13/cobra"
)

func newBuildCommand(g *globalOptions) *cobra.Command {
	f := &buildopts.Flags{}
	cmd := &cobra.Command{
		Use:   "build [OPTIONS] PATH",
		Short: "Build an image from a Dockerfile",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBuild(cmd, g, f, args[0])
		},
	}
	buildopts.Add(cmd.Flags(), f)
	buildopts.AddResources(cmd.Flags(), &f.Resources)
	return cmd
}

// buildRun is one build's progress plumbing: the renderer, the history
// recorder, and the gate the debug shell holds.
type buildRun struct {
	printer progress.Printer
	rec     *history.Recorder
	gate    *progress.Gate
	checks  []build.CheckWarning
}

func newBuildRun(w io.Writer, mode string) (*buildRun, error) {
	printer, err := progress.New(w, mode)
	if err != nil {
		return nil, err
	}
	return runFor(printer), nil
}

func runFor(printer progress.Printer) *buildRun {
	rec := history.NewRecorder()
	return &buildRun{printer: printer, rec: rec, gate: &progress.Gate{Printer: progress.Tee(printer, rec)}}
}

// wire sets the options' progress, warnings and check callbacks.
func (r *buildRun) wire(cmd *cobra.Command, opt *build.Options) {
	opt.Progress = r.gate
	opt.Warn = func(w string) { fmt.Fprintln(cmd.ErrOrStderr(), "WARNING:", printable(w)) }
	opt.OnCheck = func(w []build.CheckWarning) { r.checks = w }
}

func runBuild(cmd *cobra.Command, g *globalOptions, f *buildopts.Flags, contextDir string) error {
	start := time.Now()
	if f.Buildx.Quiet {
		f.Progress = "quiet"
	}
	if f.Buildx.Call == "check" {
		f.Check = true
	}
	tty, err := onErrorTerminal(f.OnError)
	if err != nil {
		return err
	}
	df, dfName, err := f.Dockerfile(cmd.InOrStdin(), contextDir)
	if err != nil {
		return err
	}
	opt, err := f.Options(contextDir, df, dfName)
	if err != nil {
		return err
	}
	if g.host != "" {
		return runRemoteBuild(cmd, g, f, contextDir, df, opt)
	}
	load, err := prepareLoad(f, &opt)
	if err != nil {
		return err
	}
	defer load.cleanup()
	run, err := g.serve.buildRun(cmd.ErrOrStderr(), f.Progress)
	if err != nil {
		return err
	}
	run.wire(cmd, &opt)
	g.serve.wire(&opt)
	st := g.serve.sharedState()
	if st == nil {
		if st, err = openState(cmd, g); err != nil {
			return err
		}
		defer st.Close()
	}
	switch {
	case tty != nil:
		opt.OnRunFailure = debugShell(tty, run.gate)
	case f.OnError == "keep":
		opt.OnRunFailure = keepFailure(st, cmd.ErrOrStderr())
	}
	if f.Check {
		return runCheck(cmd.Context(), cmd.OutOrStdout(), st, opt)
	}
	res, err := st.Build(cmd.Context(), opt)
	g.serve.setResult(res)
	run.gate.Close(err)
	recordBuild(cmd, g, newHistoryRecord(f, contextDir, buildopts.DockerfilePath(dfName, f.File), df, start), run.rec, res, err)
	printChecks(cmd.ErrOrStderr(), f.Progress, run.checks)
	if f.Explain {
		explain(cmd.ErrOrStderr(), run.printer)
	}
	if err != nil {
		return err
	}
	if err := load.finish(cmd); err != nil {
		return err
	}
	return reportBuild(cmd, f, res, run.checks)
}

func explain(w io.Writer, printer progress.Printer) {
	if ex, ok := printer.(interface{ Explain(io.Writer) }); ok {
		ex.Explain(w)
	} else {
		fmt.Fprintln(w, "--explain: the reasons are in the \"reason\" field of the started events")
	}
}

// reportBuild writes --iidfile and --metadata-file and says what was built.
func reportBuild(cmd *cobra.Command, f *buildopts.Flags, res *build.Result, checks []build.CheckWarning) error {
	if f.IIDFile != "" {
		if err := os.WriteFile(f.IIDFile, []byte(res.Manifest.Digest.String()), 0o644); err != nil {
			return err
		}
	}
	if f.MetadataFile != "" {
		if err := writeJSONFile(f.MetadataFile, metadataOf(res, checks)); err != nil {
			return err
		}
	}
	if f.Progress == "quiet" {
		fmt.Fprintln(cmd.OutOrStdout(), res.Manifest.Digest)
		return nil
	}
	fmt.Fprintf(cmd.ErrOrStderr(), "image %s", res.Manifest.Digest)
	if len(res.Names) > 0 {
		fmt.Fprintf(cmd.ErrOrStderr(), " named %s", strings.Join(res.Names, ", "))
	}
	fmt.Fprintln(cmd.ErrOrStderr())
	return nil
}

func openState(cmd *cobra.Command, g *globalOptions) (*build.State, error) {
	root := g.root
	if root == "" {
		root = build.DefaultRoot()
	}
	st, err := build.Open(root, build.StateOptions{
		Insecure: g.insecure,
		OnWait: func(holder string) {
			if holder == "" {
				holder = "another builder process"
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "waiting for the state directory lock on %s, held by %s ...\n", root, printable(holder))
		},
		Warn: func(w string) { fmt.Fprintln(cmd.ErrOrStderr(), "WARNING:", printable(w)) },
	})
	if err != nil || len(initBinary) == 0 {
		return st, err
	}
	// RUN steps start the small embedded init rather than this binary.
	if _, err := executor.UseInitBinary(filepath.Join(st.Root, "bin"), initBinary, initBinarySum); err != nil {
		fmt.Fprintln(cmd.ErrOrStderr(), "WARNING:", err, "(RUN steps start builder itself instead)")
	}
	return st, nil
}

// withState runs fn with the state directory open, closing it after.
func withState(cmd *cobra.Command, g *globalOptions, fn func(*build.State) error) error {
	st, err := openState(cmd, g)
	if err != nil {
		return err
	}
	defer st.Close()
	return fn(st)
}
