package build

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/builder-dev/builder/build/multiarch"
	"github.com/builder-dev/builder/build/resolve"
	"github.com/builder-dev/builder/cache/remote"
	"github.com/builder-dev/builder/frontend/dockerfile"
	"github.com/builder-dev/builder/gc"
	"github.com/builder-dev/builder/imagestore"
	"github.com/builder-dev/builder/llb"
	"github.com/builder-dev/builder/output"
	"github.com/builder-dev/builder/platform"
	"github.com/builder-dev/builder/solver"
	"github.com/builder-dev/builder/solver/ops"
	"github.com/builder-dev/builder/source/localctx"
	"github.com/google/go-containerregistry/pkg/authn"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Options describe one build.
type Options struct {
	ContextDir string
	// Dockerfile is the Dockerfile's content; DockerfileName names it in
	// messages.
	Dockerfile     []byte
	DockerfileName string
	// DockerfilePath, when set, is where the Dockerfile was read from: a
	// NAME.dockerignore beside it takes precedence over the context's.
	DockerfilePath string
	// Contexts are named build contexts: NAME=DIR, NAME=docker-image://REF
	// or NAME=oci-layout://PATH[@sha256:...].
	Contexts map[string]string
	// Warn receives warnings (unused build args, ignored directives).
	Warn func(string)
	// OnCheck receives the findings of the build checks, once, before
	// any step runs.
	OnCheck   func([]CheckWarning)
	Tags      []string
	BuildArgs map[string]string
	Target    string
	NoCache   bool
	// NoCacheFilter names stages to build without the cache.
	NoCacheFilter []string
	Push          bool
	Outputs       []output.Spec
	Parallelism   int
	Progress      solver.Progress
	// Keychain gives the credentials of pushes; nil is source.Keychain
	// (the docker config).
	Keychain authn.Keychain
	GC       *gc.Policy // the automatic GC after the build; nil: gc.DefaultPolicy
	// Secrets are the secrets RUN --mount=type=secret may use, by id.
	Secrets map[string]Secret
	// SSH are SSH agent sockets RUN --mount=type=ssh may use, by id.
	SSH map[string]string
	// SSHDial are SSH agents reached by a call per connection, by id (a
	// `builder serve` client's, forwarded over the API).
	SSHDial map[string]func(context.Context) (net.Conn, error)
	// Allow grants entitlements: EntitlementInsecure, EntitlementNetworkHost.
	Allow []string
	// OnRunFailure, when set, is called when a RUN step's command fails,
	// with the step's sandbox before its layer is discarded (the debug
	// shell of --on-error=shell, State.Kept.Keep for --on-error=keep).
	OnRunFailure func(ctx context.Context, f ops.RunFailure)
	// SquashAbove, when positive, merges the oldest layers of an image of
	// more layers into one so that it has SquashAbove (--squash-above).
	SquashAbove int
	// StepTimeout, when positive, fails any step that runs longer.
	StepTimeout time.Duration
	// HTTPTimeout bounds connecting to an ADD <url> server and each
	// silence of it; zero is source.DefaultDownloadTimeout.
	HTTPTimeout time.Duration
	// HTTPMaxSize, when positive, bounds the size of an ADD <url> download.
	HTTPMaxSize int64
	// Network is the network of RUN steps without --network: "" or
	// "default" (a private network namespace with outbound access),
	// "none", or "host" (needs EntitlementNetworkHost).
	Network string
	// CacheTo are where to export the build's cache (--cache-to);
	// CacheFrom are caches to import (--cache-from).
	CacheTo   []remote.Spec
	CacheFrom []remote.Spec
	// Resources are the cgroup limits of every RUN step (--memory, ...).
	Resources Limits
	// Pull resolves FROM images from their registry, never from the
	// local store (--pull).
	Pull bool
	// Labels are added to the image config's labels (--label).
	Labels map[string]string
	// Annotations are put on the manifest and its descriptor (--annotation).
	Annotations Annotations
	// ExtraHosts are added to /etc/hosts of RUN steps (--add-host),
	// ShmSize is the size of their /dev/shm (0: the default) and Ulimits
	// their resource limits (--ulimit).
	ExtraHosts []llb.HostIP
	ShmSize    int64
	Ulimits    []llb.Ulimit
	// Platforms are the platforms to build for (--platform); none: the
	// host's.
	Platforms []ocispec.Platform
	// Provenance attaches SLSA provenance to the build's index, which a
	// single-platform build then gets too (of its image and the
	// attestation manifest), as BuildKit does (--provenance).
	Provenance Provenance
	// SBOMScanner, when set, is the builder-sbom binary that makes an
	// SPDX SBOM of each platform's file tree for the index (--sbom).
	SBOMScanner string
}

// Annotations are --annotation values by where they go: the image
// manifest, or the manifest's descriptor (in an OCI layout's index.json
// and the result's descriptor).
type Annotations struct {
	Manifest, ManifestDescriptor map[string]string
}

// Result is a built image.
type Result struct {
	Manifest ocispec.Descriptor
	Config   []byte
	// Names are the normalised names given to the image in the local store.
	Names []string
	// Steps are the steps that ran a process, with what it used.
	Steps []StepUsage
}

// Build builds opt's Dockerfile, stores the image under every tag and
// writes the requested outputs.
func (s *State) Build(ctx context.Context, opt Options) (*Result, error) {
	out, err := s.BuildMany(ctx, []Options{opt})
	if err != nil {
		var te *TargetError
		if errors.As(err, &te) {
			err = te.Err
		}
		return nil, err
	}
	return out[0], nil
}

// frontendOptions checks a build's inputs (context directories, tags,
// build contexts) and turns them into the frontend's options. It also
// returns the build's SOURCE_DATE_EPOCH, nil if unset.
func (s *State) frontendOptions(ctx context.Context, opt Options) (dockerfile.Options, *time.Time, error) {
	contextDir, err := filepath.Abs(opt.ContextDir)
	if err != nil {
		return dockerfile.Options{}, nil, err
	}
	if fi, err := os.Stat(contextDir); err != nil || !fi.IsDir() {
		return dockerfile.Options{}, nil, fmt.Errorf("build context %s is not a directory", opt.ContextDir)
	}
	for _, t := range opt.Tags {
		if err := imagestore.CheckName(t); err != nil {
			return dockerfile.Options{}, nil, err
		}
	}
	excludes, err := localctx.ReadDockerignore(contextDir, opt.DockerfilePath)
	if err != nil {
		return dockerfile.Options{}, nil, err
	}
	contexts, err := s.buildContexts(ctx, opt.Contexts)
	if err != nil {
		return dockerfile.Options{}, nil, err
	}
	epoch, created, err := buildTimes(opt)
	if err != nil {
		return dockerfile.Options{}, nil, err
	}
	network, err := buildNetwork(opt)
	if err != nil {
		return dockerfile.Options{}, nil, err
	}
	return dockerfile.Options{
		Source:         opt.Dockerfile,
		Filename:       opt.DockerfileName,
		ContextDir:     contextDir,
		Excludes:       excludes,
		Target:         opt.Target,
		BuildArgs:      opt.BuildArgs,
		Contexts:       contexts,
		TargetPlatform: opt.targetPlatform(),
		BuildPlatform:  platform.Host(),
		NoCache:        opt.NoCache,
		NoCacheFilter:  opt.NoCacheFilter,
		Created:        created,
		Network:        network,
		ExtraHosts:     opt.ExtraHosts,
		ShmSize:        opt.ShmSize,
		Ulimits:        opt.Ulimits,
	}, epoch, nil
}

// buildContexts resolves the named build contexts: directories become
// absolute, oci-layout:// images go into the local store and are named by
// docker-image:// references.
func (s *State) buildContexts(ctx context.Context, named map[string]string) (map[string]string, error) {
	contexts := map[string]string{}
	for name, v := range named {
		var err error
		if strings.HasPrefix(v, "oci-layout://") {
			if v, err = s.Images.LayoutContext(ctx, name, v); err != nil {
				return nil, err
			}
		}
		if !strings.Contains(v, "://") {
			if v, err = filepath.Abs(v); err != nil {
				return nil, err
			}
			if fi, err := os.Stat(v); err != nil || !fi.IsDir() {
				return nil, fmt.Errorf("--build-context %s=%s: not a directory", name, named[name])
			}
		}
		contexts[name] = v
	}
	return contexts, nil
}

// lower turns the Dockerfile into the build graph, runs the build checks,
// refuses what needs an entitlement not granted, passes on the frontend's
// warnings and returns the session of the build's RUN steps. resolver is
// the build's memo of FROM lookups, shared by every platform.
func (s *State) lower(ctx context.Context, opt Options, fopt dockerfile.Options, resolver *resolve.Memo) (*dockerfile.Result, *ops.Session, error) {
	fe, err := dockerfile.Build(ctx, fopt, resolver)
	if err != nil {
		return nil, nil, err
	}
	if err := s.runChecks(ctx, opt, fopt, resolver); err != nil {
		return nil, nil, err
	}
	if err := prepareGraph(fe, opt); err != nil {
		return nil, nil, err
	}
	warnNetwork(fe.Root, opt.Warn)
	sess, err := opt.session()
	if err != nil {
		return nil, nil, err
	}
	for _, w := range fe.Warnings {
		if opt.Warn != nil {
			opt.Warn(w)
		}
	}
	return fe, sess, nil
}

// prepareGraph adds opt's labels to a lowered Dockerfile and refuses what
// this build may not run: an entitlement not granted, a platform without
// its emulator.
func prepareGraph(fe *dockerfile.Result, opt Options) error {
	addLabels(fe, opt.Labels)
	if err := checkEntitlements(fe.Root, opt.Allow); err != nil {
		return err
	}
	return multiarch.CheckRunnable(fe.Root)
}
