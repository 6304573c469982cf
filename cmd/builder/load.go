package main

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/cmd/builder/internal/buildopts"
	"github.com/builder-dev/builder/cmd/builder/internal/imageload"
	"github.com/builder-dev/builder/output"
	"github.com/spf13/cobra"
)

// loader is --load: the image is written as a docker archive to a
// temporary file during the build, then loaded into Docker or Podman.
type loader struct {
	tmpDir string
	target imageload.Target
}

// prepareLoad picks where --load goes, before the build so that a machine
// with neither fails early, and adds the archive output to opt.
func prepareLoad(f *buildopts.Flags, opt *build.Options) (*loader, error) {
	if !f.Buildx.Load {
		return nil, nil
	}
	target, err := imageload.Detect()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "builder-load-")
	if err != nil {
		return nil, fmt.Errorf("--load: %w", err)
	}
	opt.Outputs = append(opt.Outputs, output.Spec{Type: output.Docker, Dest: filepath.Join(dir, "image.tar"), Names: slices.Clone(f.Tags)})
	return &loader{tmpDir: dir, target: target}, nil
}

// finish loads the archive the build wrote and says where it went.
func (l *loader) finish(cmd *cobra.Command) error {
	if l == nil {
		return nil
	}
	msg, err := l.target.Load(cmd.Context(), filepath.Join(l.tmpDir, "image.tar"))
	if err != nil {
		return err
	}
	fmt.Fprintln(cmd.ErrOrStderr(), printable(msg))
	return nil
}

// cleanup removes the archive, loaded or not (a failed build wrote none).
func (l *loader) cleanup() {
	if l != nil {
		os.RemoveAll(l.tmpDir)
	}
}
