package build

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/builder-dev/builder/cache"
	"github.com/builder-dev/builder/exporter"
	"github.com/builder-dev/builder/frontend/dockerfile"
	"github.com/builder-dev/builder/solver"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/moby/patternmatcher/ignorefile"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Output is one place to write the built image besides the local store.
type Output struct {
	// Type is "oci" (an OCI layout tarball) for now.
	Type string
	Dest string
}

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
	// Contexts are named build contexts: NAME=DIR or NAME=docker-image://REF.
	Contexts map[string]string
	// Warn receives warnings (unused build args, ignored directives).
	Warn        func(string)
	Tags        []string
	BuildArgs   map[string]string
	Target      string
	NoCache     bool
	Push        bool
	Outputs     []Output
	Parallelism int
	Progress    solver.Progress
	Keychain    authn.Keychain
	GC          *GCPolicy // the automatic GC after the build; nil: DefaultGCPolicy
}

// Result is a built image.
type Result struct {
	Manifest ocispec.Descriptor
	Config   []byte
	// Names are the normalised names given to the image in the local store.
	Names []string
}

// Build builds opt's Dockerfile, stores the image under every tag and
// writes the requested outputs.
func (s *State) Build(ctx context.Context, opt Options) (*Result, error) {
	contextDir, err := filepath.Abs(opt.ContextDir)
	if err != nil {
		return nil, err
	}
	if fi, err := os.Stat(contextDir); err != nil || !fi.IsDir() {
		return nil, fmt.Errorf("build context %s is not a directory", opt.ContextDir)
	}
	excludes, err := readDockerignore(contextDir, opt.DockerfilePath)
	if err != nil {
		return nil, err
	}
	contexts := map[string]string{}
	for name, v := range opt.Contexts {
		if !strings.Contains(v, "://") {
			if v, err = filepath.Abs(v); err != nil {
				return nil, err
			}
			if fi, err := os.Stat(v); err != nil || !fi.IsDir() {
				return nil, fmt.Errorf("--build-context %s=%s: not a directory", name, opt.Contexts[name])
			}
		}
		contexts[name] = v
	}
	fe, err := dockerfile.Build(ctx, dockerfile.Options{
		Source:     opt.Dockerfile,
		Filename:   opt.DockerfileName,
		ContextDir: contextDir,
		Excludes:   excludes,
		Target:     opt.Target,
		BuildArgs:  opt.BuildArgs,
		Contexts:   contexts,
		Platform:   HostPlatform(),
		NoCache:    opt.NoCache,
		Created:    time.Now().UTC().Truncate(time.Second),
	}, resolver{s.Registries})
	if err != nil {
		return nil, err
	}
	for _, w := range fe.Warnings {
		if opt.Warn != nil {
			opt.Warn(w)
		}
	}
	parallelism := opt.Parallelism
	if parallelism <= 0 {
		parallelism = runtime.NumCPU()
	}
	use := s.startUse()
	defer s.finishUse(ctx, use, opt.GC, opt.Warn)
	sv := solver.New(s.worker.Op, use, opt.Progress, parallelism)
	history := &stepHistory{db: s.DB, scope: contextDir + "\x00" + opt.DockerfilePath + "\x00" + opt.DockerfileName, dirty: map[string][]byte{}}
	sv.SetHistory(history)
	res, err := sv.Solve(ctx, fe.Root)
	// What ran is worth remembering even when a later step failed.
	if ferr := history.flush(); err == nil && ferr != nil {
		err = ferr
	}
	if err != nil {
		return nil, err
	}
	ex := &exporter.Exporter{DB: s.DB, Content: s.Content, Snapshots: s.Snapshots}
	img, err := ex.Assemble(ctx, res.Snapshot, fe.Image)
	if err != nil {
		return nil, err
	}
	use.exported(img.Manifest, img.ManifestBytes)
	out := &Result{Manifest: img.Manifest, Config: img.Config}
	for _, tag := range opt.Tags {
		n := normaliseName(tag)
		if _, err := s.Registries.ParseReference(n); err != nil {
			return nil, err
		}
		if err := s.DB.PutImage(cache.Image{Name: n, Manifest: img.Manifest, Snapshot: res.Snapshot, Created: time.Now().UTC()}); err != nil {
			return nil, err
		}
		out.Names = append(out.Names, n)
	}
	for _, o := range opt.Outputs {
		if err := s.writeOutput(o, img, out.Names); err != nil {
			return nil, err
		}
	}
	if opt.Push {
		if len(opt.Tags) == 0 {
			return nil, errors.New("--push needs at least one -t/--tag naming the registry and repository")
		}
		for _, n := range out.Names {
			ref, err := s.Registries.ParseReference(n)
			if err != nil {
				return nil, err
			}
			if err := exporter.Push(ctx, s.Content, img.Manifest, ref, opt.Keychain); err != nil {
				return nil, err
			}
		}
	}
	return out, nil
}

func (s *State) writeOutput(o Output, img *exporter.Image, names []string) error {
	switch o.Type {
	case "oci":
		if o.Dest == "" {
			return errors.New("-o type=oci needs dest=FILE.tar")
		}
		tmp := o.Dest + ".tmp"
		f, err := os.Create(tmp)
		if err != nil {
			return fmt.Errorf("writing OCI layout: %w", err)
		}
		if err := exporter.WriteOCILayout(f, s.Content, img.Manifest, names); err != nil {
			f.Close()
			os.Remove(tmp)
			return fmt.Errorf("writing OCI layout %s: %w", o.Dest, err)
		}
		if err := f.Close(); err != nil {
			os.Remove(tmp)
			return err
		}
		return os.Rename(tmp, o.Dest)
	}
	return fmt.Errorf("output type %q is not supported yet (supported: oci)", o.Type)
}

// readDockerignore reads the ignore file for a build: DOCKERFILE.dockerignore
// beside the Dockerfile if there is one, else the context's .dockerignore.
func readDockerignore(dir, dockerfile string) ([]string, error) {
	name := filepath.Join(dir, ".dockerignore")
	if dockerfile != "" {
		if _, err := os.Stat(dockerfile + ".dockerignore"); err == nil {
			name = dockerfile + ".dockerignore"
		}
	}
	f, err := os.Open(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	patterns, err := ignorefile.ReadAll(f)
	if err != nil {
		return nil, fmt.Errorf("reading .dockerignore: %w", err)
	}
	return patterns, nil
}
