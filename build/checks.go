package build

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"

	"github.com/builder-dev/builder/build/multiarch"
	"github.com/builder-dev/builder/build/resolve"
	"github.com/builder-dev/builder/frontend/dockerfile"
	"github.com/builder-dev/builder/frontend/dockerfile/checks"
	"github.com/builder-dev/builder/platform"
	"github.com/builder-dev/builder/source/localctx"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// CheckWarning is a finding of the build checks (BuildKit's rules).
type CheckWarning = checks.Warning

// Check runs only the build checks of opt's Dockerfile: every stage, or
// those opt.Target needs when it is set. The result's Err is set when
// the check options say error=true and a rule fired.
func (s *State) Check(ctx context.Context, opt Options) (*checks.Result, error) {
	contextDir, err := filepath.Abs(opt.ContextDir)
	if err != nil {
		return nil, err
	}
	excludes, err := localctx.ReadDockerignore(contextDir, opt.DockerfilePath)
	if err != nil {
		return nil, err
	}
	return checks.Check(ctx, s.frontendCheckOptions(opt, contextDir, excludes), resolve.LocalFirst{Images: s.Images, Remote: s.Registries},
		checks.Options{AllStages: opt.Target == ""})
}

func (s *State) frontendCheckOptions(opt Options, contextDir string, excludes []string) dockerfile.Options {
	return dockerfile.Options{
		Source: opt.Dockerfile, Filename: opt.DockerfileName, ContextDir: contextDir, Excludes: excludes,
		Target: opt.Target, BuildArgs: opt.BuildArgs, Contexts: opt.Contexts, TargetPlatform: opt.targetPlatform(), BuildPlatform: platform.Host(),
	}
}

// runChecks runs the checks of a build after its Dockerfile was lowered
// (with the resolver that lowered it) and hands the findings to
// opt.OnCheck. A build of several platforms checks each (the stages a
// platform needs and its base images may differ: FROM base-$TARGETARCH)
// and reports a finding once. With check=error=true a finding fails the
// build; checks that cannot run are a warning, never the end of a build.
func (s *State) runChecks(ctx context.Context, opt Options, fopt dockerfile.Options, r dockerfile.ImageResolver) error {
	targets := opt.Platforms
	if len(targets) == 0 {
		targets = []ocispec.Platform{fopt.TargetPlatform}
	}
	res, err := multiarch.Check(ctx, fopt, r, targets)
	if err != nil {
		if ctx.Err() != nil || errors.Is(err, checks.ErrOptions) {
			return err
		}
		if opt.Warn != nil {
			opt.Warn(fmt.Sprintf("build checks: %v", err))
		}
		return nil
	}
	if opt.OnCheck != nil && len(res.Warnings) > 0 {
		opt.OnCheck(res.Warnings)
	}
	if res.Err != nil {
		return fmt.Errorf("%s: %w (check=error=true)", fopt.Filename, res.Err)
	}
	return nil
}
