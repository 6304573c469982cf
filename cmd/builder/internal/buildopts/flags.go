// Package buildopts holds the flags of `builder build` (buildx's spelling)
// and maps them to build.Options: parsing only, no building.
package buildopts

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
	"github.com/builder-dev/builder/gc"
	"github.com/builder-dev/builder/source"
	"github.com/spf13/pflag"
)

// Flags are the flags of `builder build`; bake fills one per target.
type Flags struct {
	Tags          []string
	File          string
	BuildArgs     []string
	Target        string
	NoCache       bool
	Push          bool
	Outputs       []string
	Progress      string
	Resources     Resources
	IIDFile       string
	MetadataFile  string
	Contexts      []string
	Explain       bool
	GCKeep        string
	NoCacheFilter []string
	Secrets       []string
	SSH           []string
	Allow         []string
	Network       string
	CacheTo       []string
	CacheFrom     []string
	Parallelism   int
	SquashAbove   int
	Check         bool
	OnError       string
	StepTimeout   time.Duration
	HTTPTimeout   time.Duration
	HTTPMaxSize   string
	Buildx        Buildx
}

// addBuildFlags registers f's flags, with buildx's spelling where buildx
// has the flag.
func Add(fl *pflag.FlagSet, f *Flags) {
	fl.StringArrayVarP(&f.Tags, "tag", "t", nil, "name and optionally a tag (name:tag); repeatable")
	fl.StringVarP(&f.File, "file", "f", "", "name of the Dockerfile (default PATH/Dockerfile; - reads stdin)")
	fl.StringArrayVar(&f.BuildArgs, "build-arg", nil, "build-time variable NAME=VALUE (NAME alone takes it from the environment)")
	fl.StringVar(&f.Target, "target", "", "stage to build")
	fl.IntVar(&f.Parallelism, "parallelism", 0, "how many steps may run at once (default: the number of CPUs, and more while the running steps wait rather than compute)")
	fl.DurationVar(&f.StepTimeout, "step-timeout", 0, "fail any step that runs longer than this (e.g. 10m; default: no limit)")
	fl.DurationVar(&f.HTTPTimeout, "http-timeout", source.DefaultDownloadTimeout, "ADD <url>: fail when connecting, or any wait for data, takes longer than this")
	fl.StringVar(&f.HTTPMaxSize, "http-max-size", "", "ADD <url>: fail a download larger than this (e.g. 2GB; default: no limit)")
	fl.BoolVar(&f.NoCache, "no-cache", false, "do not use the cache")
	fl.IntVar(&f.SquashAbove, "squash-above", 0, "merge the oldest layers of an image of more than N layers into one, so that it has N (default: an image of more than "+strconv.Itoa(exporter.DefaultMaxLayers)+" layers is an error)")
	fl.StringSliceVar(&f.NoCacheFilter, "no-cache-filter", nil, "do not use the cache for these stages (repeatable or comma-separated)")
	fl.BoolVar(&f.Push, "push", false, "push every tag to its registry")
	fl.StringArrayVarP(&f.Outputs, "output", "o", nil, "output destination, e.g. type=oci,dest=image.tar")
	fl.StringVar(&f.Progress, "progress", "auto", "progress output: auto (tty on a terminal, else plain), tty, plain, rawjson or quiet")
	fl.StringVar(&f.IIDFile, "iidfile", "", "write the image (manifest) digest to this file")
	fl.StringVar(&f.MetadataFile, "metadata-file", "", "write the build result's metadata (digests, descriptor, names) as JSON to this file")
	fl.StringVar(&f.GCKeep, "gc-keep-storage", "", "after the build, remove least recently used cache until it holds at most this size, e.g. 5GB (0 disables; default $"+gc.KeepStorageEnv+", else 10% of the filesystem, at most 10GB)")
	fl.BoolVar(&f.Explain, "explain", false, "after the build, say for each step that ran why its cache could not be used")
	fl.StringArrayVar(&f.Secrets, "secret", nil, "secret for RUN --mount=type=secret: id=ID,src=FILE or id=ID,env=VAR")
	fl.StringArrayVar(&f.SSH, "ssh", nil, "SSH agent for RUN --mount=type=ssh: default (the agent at $SSH_AUTH_SOCK) or ID=SOCKET")
	fl.StringArrayVar(&f.CacheTo, "cache-to", nil, "export the build cache: type=registry,ref=REF[,mode=min|max][,compression=gzip|zstd|uncompressed][,cache-mounts=true], type=local,dest=DIR or type=inline (repeatable)")
	fl.StringArrayVar(&f.CacheFrom, "cache-from", nil, "import a build cache: type=registry,ref=REF or type=local,src=DIR (repeatable)")
	fl.StringArrayVar(&f.Allow, "allow", nil, "grant an entitlement: security.insecure (for RUN --security=insecure), network.host (for --network=host and RUN --network=host)")
	fl.StringVar(&f.Network, "network", "default", "network of RUN steps without --network: default (private, with outbound access), none, or host (needs --allow network.host)")
	fl.StringVar(&f.OnError, "on-error", "fail", "when a RUN fails: fail; shell (open a shell on the terminal in the failed step's sandbox, then fail); or keep (keep its filesystem for builder debug)")
	fl.BoolVar(&f.Check, "check", false, "run only the build checks and print their warnings; exit status 1 if any")
	fl.StringArrayVar(&f.Contexts, "build-context", nil, "additional build context NAME=DIR or NAME=docker-image://REF, for FROM and COPY --from")
	addBuildx(fl, &f.Buildx)
}

// dockerfile reads the Dockerfile f names (stdin for "-"); name is its
// path ("Dockerfile" for stdin).
func (f *Flags) Dockerfile(stdin io.Reader, contextDir string) (df []byte, name string, err error) {
	name = f.File
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
func (f *Flags) args() (map[string]string, error) {
	args := map[string]string{}
	for _, a := range f.BuildArgs {
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
func (f *Flags) Options(contextDir string, df []byte, dfName string) (build.Options, error) {
	opt := build.Options{
		ContextDir:     contextDir,
		Dockerfile:     df,
		DockerfileName: filepath.Base(dfName),
		DockerfilePath: DockerfilePath(dfName, f.File),
		Tags:           f.Tags,
		Target:         f.Target,
		NoCache:        f.NoCache,
		NoCacheFilter:  f.NoCacheFilter,
		Parallelism:    f.Parallelism,
		StepTimeout:    f.StepTimeout,
		HTTPTimeout:    f.HTTPTimeout,
		Push:           f.Push,
		Allow:          f.Allow,
		SquashAbove:    f.SquashAbove,
		Network:        f.Network,
	}
	var err error
	if opt.BuildArgs, err = f.args(); err != nil {
		return opt, err
	}
	if opt.Resources, err = f.Resources.Limits(); err != nil {
		return opt, err
	}
	if opt.Contexts, err = parseBuildContexts(f.Contexts); err != nil {
		return opt, err
	}
	if f.GCKeep != "" {
		n, err := gc.ParseSize(f.GCKeep)
		if err != nil {
			return opt, fmt.Errorf("--gc-keep-storage: %w", err)
		}
		opt.GC = &gc.Policy{KeepStorage: n}
	}
	if f.HTTPMaxSize != "" {
		if opt.HTTPMaxSize, err = gc.ParseSize(f.HTTPMaxSize); err != nil {
			return opt, fmt.Errorf("--http-max-size: %w", err)
		}
	}
	if err := f.runOptions(&opt); err != nil {
		return opt, err
	}
	return opt, f.Buildx.apply(&opt)
}

// runOptions maps the flags about outputs, caches and what RUN steps get.
func (f *Flags) runOptions(opt *build.Options) error {
	var err error
	if opt.Outputs, err = ParseOutputs(f.Outputs); err != nil {
		return err
	}
	if opt.CacheTo, err = parseCacheSpecs(f.CacheTo, true); err != nil {
		return err
	}
	if opt.CacheFrom, err = parseCacheSpecs(f.CacheFrom, false); err != nil {
		return err
	}
	if opt.Secrets, err = parseSecrets(f.Secrets); err != nil {
		return err
	}
	opt.SSH, err = parseSSH(f.SSH)
	return err
}

// dockerfilePath is the Dockerfile's path for finding NAME.dockerignore,
// or "" when it came from stdin.
func DockerfilePath(name, flag string) string {
	if flag == "-" {
		return ""
	}
	return name
}
