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
	"github.com/builder-dev/builder/exporter"
	"github.com/builder-dev/builder/source"
	"github.com/spf13/pflag"
)

// buildFlags are the flags of `builder build`; bake fills one per target.
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
	buildx        buildxFlags
}

// addBuildFlags registers f's flags, with buildx's spelling where buildx
// has the flag.
func addBuildFlags(fl *pflag.FlagSet, f *buildFlags) {
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
	addBuildxFlags(fl, &f.buildx)
}

// dockerfile reads the Dockerfile f names (stdin for "-"); name is its
// path ("Dockerfile" for stdin).
func (f *buildFlags) dockerfile(stdin io.Reader, contextDir string) (df []byte, name string, err error) {
	name = f.file
	if name == "" {
		name = filepath.Join(contextDir, "Dockerfile")
	}
	if name == "-" {
		df, err = io.ReadAll(stdin)
		name = "Dockerfile"
	} else {
		df, err = os.ReadFile(name)
	}
	if err != nil {
		return nil, "", fmt.Errorf("reading Dockerfile: %w", err)
	}
	return df, name, nil
}

// args are the --build-arg values, with $SOURCE_DATE_EPOCH as buildx.
func (f *buildFlags) args() (map[string]string, error) {
	args := map[string]string{}
	for _, a := range f.buildArgs {
		k, v, ok := strings.Cut(a, "=")
		if k == "" {
			return nil, fmt.Errorf("--build-arg %q: want NAME=VALUE or NAME, with a NAME", a)
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
	return args, nil
}

// options maps the flags to build options for the Dockerfile df read from
// dfName. Progress, Warn and the callbacks are the caller's.
func (f *buildFlags) options(contextDir string, df []byte, dfName string) (build.Options, error) {
	opt := build.Options{
		ContextDir:     contextDir,
		Dockerfile:     df,
		DockerfileName: filepath.Base(dfName),
		DockerfilePath: dockerfilePath(dfName, f.file),
		Tags:           f.tags,
		Target:         f.target,
		NoCache:        f.noCache,
		NoCacheFilter:  f.noCacheFilter,
		Parallelism:    f.parallelism,
		StepTimeout:    f.stepTimeout,
		HTTPTimeout:    f.httpTimeout,
		Push:           f.push,
		Allow:          f.allow,
		SquashAbove:    f.squashAbove,
		Network:        f.network,
	}
	var err error
	if opt.BuildArgs, err = f.args(); err != nil {
		return opt, err
	}
	if opt.Resources, err = f.resources.limits(); err != nil {
		return opt, err
	}
	if opt.Contexts, err = parseBuildContexts(f.contexts); err != nil {
		return opt, err
	}
	if f.gcKeep != "" {
		n, err := build.ParseSize(f.gcKeep)
		if err != nil {
			return opt, fmt.Errorf("--gc-keep-storage: %w", err)
		}
		opt.GC = &build.GCPolicy{KeepStorage: n}
	}
	if f.httpMaxSize != "" {
		if opt.HTTPMaxSize, err = build.ParseSize(f.httpMaxSize); err != nil {
			return opt, fmt.Errorf("--http-max-size: %w", err)
		}
	}
	if err := f.runOptions(&opt); err != nil {
		return opt, err
	}
	return opt, f.buildx.apply(&opt)
}

// runOptions maps the flags about outputs, caches and what RUN steps get.
func (f *buildFlags) runOptions(opt *build.Options) error {
	var err error
	if opt.Outputs, err = parseOutputs(f.outputs); err != nil {
		return err
	}
	if opt.CacheTo, err = parseCacheSpecs(f.cacheTo, true); err != nil {
		return err
	}
	if opt.CacheFrom, err = parseCacheSpecs(f.cacheFrom, false); err != nil {
		return err
	}
	if opt.Secrets, err = parseSecrets(f.secrets); err != nil {
		return err
	}
	opt.SSH, err = parseSSH(f.ssh)
	return err
}

// dockerfilePath is the Dockerfile's path for finding NAME.dockerignore,
// or "" when it came from stdin.
func dockerfilePath(name, flag string) string {
	if flag == "-" {
		return ""
	}
	return name
}
