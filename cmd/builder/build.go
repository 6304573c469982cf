package main

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/executor"
	"github.com/builder-dev/builder/exporter"
	"github.com/builder-dev/builder/source"
	"github.com/spf13/cobra"
)

type buildFlags struct {
	tags          []string
	file          string
	buildArgs     []string
	target        string
	noCache       bool
	push          bool
	outputs       []string
	progress      string
	resources     resourceFlags
	iidfile       string
	metadataFile  string
	contexts      []string
	explain       bool
	gcKeep        string
	noCacheFilter []string
	secrets       []string
	ssh           []string
	allow         []string
	network       string
	cacheTo       []string
	cacheFrom     []string
	parallelism   int
	squashAbove   int
	check         bool
	onError       string
	stepTimeout   time.Duration
	httpTimeout   time.Duration
	httpMaxSize   string
	serve         *serveHooks // set when the build runs for a `builder serve` client
}

func newBuildCommand(g *globalOptions) *cobra.Command {
	f := &buildFlags{}
	cmd := &cobra.Command{
		Use:   "build [OPTIONS] PATH",
		Short: "Build an image from a Dockerfile",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runBuild(cmd, g, f, args[0])
		},
	}
	fl := cmd.Flags()
	fl.StringArrayVarP(&f.tags, "tag", "t", nil, "name and optionally a tag (name:tag); repeatable")
	fl.StringVarP(&f.file, "file", "f", "", "name of the Dockerfile (default PATH/Dockerfile; - reads stdin)")
	fl.StringArrayVar(&f.buildArgs, "build-arg", nil, "build-time variable NAME=VALUE (NAME alone takes it from the environment)")
	fl.StringVar(&f.target, "target", "", "stage to build")
	fl.IntVar(&f.parallelism, "parallelism", 0, "how many steps may run at once (default: the number of CPUs)")
	fl.DurationVar(&f.stepTimeout, "step-timeout", 0, "fail any step that runs longer than this (e.g. 10m; default: no limit)")
	fl.DurationVar(&f.httpTimeout, "http-timeout", source.DefaultDownloadTimeout, "ADD <url>: fail when connecting, or any wait for data, takes longer than this")
	fl.StringVar(&f.httpMaxSize, "http-max-size", "", "ADD <url>: fail a download larger than this (e.g. 2GB; default: no limit)")
	fl.BoolVar(&f.noCache, "no-cache", false, "do not use the cache")
	fl.IntVar(&f.squashAbove, "squash-above", 0, "merge the oldest layers of an image of more than N layers into one, so that it has N (default: an image of more than "+strconv.Itoa(exporter.DefaultMaxLayers)+" layers is an error)")
	fl.StringSliceVar(&f.noCacheFilter, "no-cache-filter", nil, "do not use the cache for these stages (repeatable or comma-separated)")
	fl.BoolVar(&f.push, "push", false, "push every tag to its registry")
	fl.StringArrayVarP(&f.outputs, "output", "o", nil, "output destination, e.g. type=oci,dest=image.tar")
	fl.StringVar(&f.progress, "progress", "auto", "progress output: auto (tty on a terminal, else plain), tty, plain, rawjson or quiet")
	fl.StringVar(&f.iidfile, "iidfile", "", "write the image (manifest) digest to this file")
	addResourceFlags(cmd, &f.resources)
	fl.StringVar(&f.metadataFile, "metadata-file", "", "write the build result's metadata (digests, descriptor, names) as JSON to this file")
	fl.StringVar(&f.gcKeep, "gc-keep-storage", "", "after the build, remove least recently used cache until it holds at most this size, e.g. 5GB (0 disables; default $"+build.GCKeepStorageEnv+", else 10% of the filesystem, at most 10GB)")
	fl.BoolVar(&f.explain, "explain", false, "after the build, say for each step that ran why its cache could not be used")
	fl.StringArrayVar(&f.secrets, "secret", nil, "secret for RUN --mount=type=secret: id=ID,src=FILE or id=ID,env=VAR")
	fl.StringArrayVar(&f.ssh, "ssh", nil, "SSH agent for RUN --mount=type=ssh: default (the agent at $SSH_AUTH_SOCK) or ID=SOCKET")
	fl.StringArrayVar(&f.cacheTo, "cache-to", nil, "export the build cache: type=registry,ref=REF[,mode=min|max][,compression=gzip|zstd|uncompressed], type=local,dest=DIR or type=inline (repeatable)")
	fl.StringArrayVar(&f.cacheFrom, "cache-from", nil, "import a build cache: type=registry,ref=REF or type=local,src=DIR (repeatable)")
	fl.StringArrayVar(&f.allow, "allow", nil, "grant an entitlement: security.insecure (for RUN --security=insecure), network.host (for --network=host and RUN --network=host)")
	fl.StringVar(&f.network, "network", "default", "network of RUN steps without --network: default (private, with outbound access), none, or host (needs --allow network.host)")
	fl.StringVar(&f.onError, "on-error", "fail", "when a RUN fails: fail; shell (open a shell on the terminal in the failed step's sandbox, then fail); or keep (keep its filesystem for builder debug)")
	fl.BoolVar(&f.check, "check", false, "run only the build checks and print their warnings; exit status 1 if any")
	fl.StringArrayVar(&f.contexts, "build-context", nil, "additional build context NAME=DIR or NAME=docker-image://REF, for FROM and COPY --from")
	return cmd
}

func runBuild(cmd *cobra.Command, g *globalOptions, f *buildFlags, contextDir string) error {
	start := time.Now()
	tty, err := onErrorTerminal(f.onError)
	if err != nil {
		return err
	}
	dfName := f.file
	if dfName == "" {
		dfName = filepath.Join(contextDir, "Dockerfile")
	}
	var df []byte
	if dfName == "-" {
		df, err = io.ReadAll(cmd.InOrStdin())
		dfName = "Dockerfile"
	} else {
		df, err = os.ReadFile(dfName)
	}
	if err != nil {
		return fmt.Errorf("reading Dockerfile: %w", err)
	}
	args := map[string]string{}
	for _, a := range f.buildArgs {
		k, v, ok := strings.Cut(a, "=")
		if k == "" {
			return fmt.Errorf("--build-arg %q: want NAME=VALUE or NAME, with a NAME", a)
		}
		if !ok {
			var set bool
			if v, set = os.LookupEnv(k); !set {
				continue
			}
		}
		args[k] = v
	}
	addSourceDateEpoch(args)
	limits, err := f.resources.limits()
	if err != nil {
		return err
	}
	contexts, err := parseBuildContexts(f.contexts)
	if err != nil {
		return err
	}
	var gc *build.GCPolicy
	if f.gcKeep != "" {
		n, err := build.ParseSize(f.gcKeep)
		if err != nil {
			return fmt.Errorf("--gc-keep-storage: %w", err)
		}
		gc = &build.GCPolicy{KeepStorage: n}
	}
	var httpMax int64
	if f.httpMaxSize != "" {
		if httpMax, err = build.ParseSize(f.httpMaxSize); err != nil {
			return fmt.Errorf("--http-max-size: %w", err)
		}
	}
	outputs, err := parseOutputs(f.outputs)
	if err != nil {
		return err
	}
	cacheTo, err := parseCacheSpecs(f.cacheTo, true)
	if err != nil {
		return err
	}
	cacheFrom, err := parseCacheSpecs(f.cacheFrom, false)
	if err != nil {
		return err
	}
	secrets, err := parseSecrets(f.secrets)
	if err != nil {
		return err
	}
	ssh, err := parseSSH(f.ssh)
	if err != nil {
		return err
	}
	printer, err := newProgress(cmd.ErrOrStderr(), f.progress)
	if err != nil {
		return err
	}
	rec := newRecorder()
	if g.host != "" {
		return runRemoteBuild(cmd, g, f, remoteInputs{contextDir, df, filepath.Base(dfName), args, secrets, printer})
	}
	printer = f.serve.printer(printer)
	progress := &gatedProgress{progressPrinter: teeProgress{printer, rec}}
	st, err := openState(cmd, g)
	if err != nil {
		return err
	}
	defer st.Close()
	var checks []build.CheckWarning
	opt := build.Options{
		ContextDir:     contextDir,
		Dockerfile:     df,
		DockerfileName: filepath.Base(dfName),
		DockerfilePath: dockerfilePath(dfName, f.file),
		Contexts:       contexts,
		GC:             gc,
		Warn:           func(w string) { fmt.Fprintln(cmd.ErrOrStderr(), "WARNING:", printable(w)) },
		Tags:           f.tags,
		BuildArgs:      args,
		Target:         f.target,
		Resources:      limits,
		NoCache:        f.noCache,
		NoCacheFilter:  f.noCacheFilter,
		Parallelism:    f.parallelism,
		StepTimeout:    f.stepTimeout,
		HTTPTimeout:    f.httpTimeout,
		HTTPMaxSize:    httpMax,
		Push:           f.push,
		Outputs:        outputs,
		Progress:       progress,
		Secrets:        secrets,
		SSH:            ssh,
		Allow:          f.allow,
		SquashAbove:    f.squashAbove,
		Network:        f.network,
		CacheTo:        cacheTo,
		CacheFrom:      cacheFrom,
		OnCheck:        func(w []build.CheckWarning) { checks = w },
	}
	switch {
	case tty != nil:
		opt.OnRunFailure = debugShell(tty, progress)
	case f.onError == "keep":
		opt.OnRunFailure = keepFailure(st, cmd.ErrOrStderr())
	}
	if f.check {
		return runCheck(cmd.Context(), cmd.OutOrStdout(), st, opt)
	}
	f.serve.setSecrets(opt.Secrets)
	res, err := st.Build(cmd.Context(), opt)
	f.serve.setResult(res)
	progress.Close(err)
	recordBuild(cmd, g, newHistoryRecord(f, contextDir, dockerfilePath(dfName, f.file), df, start), rec, res, err)
	printChecks(cmd.ErrOrStderr(), f.progress, checks)
	if f.explain {
		if ex, ok := printer.(interface{ Explain(io.Writer) }); ok {
			ex.Explain(cmd.ErrOrStderr())
		} else {
			fmt.Fprintln(cmd.ErrOrStderr(), "--explain: the reasons are in the \"reason\" field of the started events")
		}
	}
	if err != nil {
		return err
	}
	if f.iidfile != "" {
		if err := os.WriteFile(f.iidfile, []byte(res.Manifest.Digest.String()), 0o644); err != nil {
			return err
		}
	}
	if f.metadataFile != "" {
		if err := writeMetadata(f.metadataFile, res, checks); err != nil {
			return err
		}
	}
	if f.progress != "quiet" {
		fmt.Fprintf(cmd.ErrOrStderr(), "image %s", res.Manifest.Digest)
		if len(res.Names) > 0 {
			fmt.Fprintf(cmd.ErrOrStderr(), " named %s", strings.Join(res.Names, ", "))
		}
		fmt.Fprintln(cmd.ErrOrStderr())
	} else {
		fmt.Fprintln(cmd.OutOrStdout(), res.Manifest.Digest)
	}
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

// dockerfilePath is the Dockerfile's path for finding NAME.dockerignore,
// or "" when it came from stdin.
func dockerfilePath(name, flag string) string {
	if flag == "-" {
		return ""
	}
	return name
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
