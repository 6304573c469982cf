package build

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/builder-dev/builder/executor"
	"github.com/builder-dev/builder/executor/cgroup"
	"github.com/builder-dev/builder/frontend/dockerfile"
	"github.com/opencontainers/go-digest"
)

// RunOptions describe a command run in an image.
type RunOptions struct {
	Image  string
	Args   []string
	Stdin  io.Reader
	Stdout io.Writer
	Stderr io.Writer
	// Resources are the command's cgroup limits (--memory, ...).
	Resources cgroup.Limits
	// Network is "" or "default" (a private network namespace with
	// outbound access), "none" or "host".
	Network string
}

// Run runs a command in a fresh writable layer over a stored image, as
// `docker run --rm` would, and removes the layer afterwards.
func (s *State) Run(ctx context.Context, opt RunOptions) error {
	network, err := runNetwork(opt.Network)
	if err != nil {
		return err
	}
	rec, err := s.Images.Image(opt.Image)
	if err != nil {
		return err
	}
	raw, err := s.Content.ReadAll(rec.Manifest.Digest)
	if err != nil {
		return err
	}
	var m struct {
		Config struct {
			Digest string `json:"digest"`
		} `json:"config"`
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return err
	}
	rawConfig, err := s.Content.ReadAll(digest.Digest(m.Config.Digest))
	if err != nil {
		return err
	}
	var img dockerfile.Image
	if err := json.Unmarshal(rawConfig, &img); err != nil {
		return err
	}
	args := append([]string(nil), img.Config.Entrypoint...)
	if len(opt.Args) > 0 {
		args = append(args, opt.Args...)
	} else {
		args = append(args, img.Config.Cmd...)
	}
	if len(args) == 0 {
		return fmt.Errorf("image %s has no CMD or ENTRYPOINT: give a command to run", opt.Image)
	}
	return s.runScratch(ctx, rec.Snapshot, "run", executor.Spec{
		Args:  args,
		Env:   img.Config.Env,
		Cwd:   img.Config.WorkingDir,
		User:  img.Config.User,
		Stdin: opt.Stdin, Stdout: opt.Stdout, Stderr: opt.Stderr,
		Resources: opt.Resources,
		Network:   network,
	})
}

// runScratch runs spec on a fresh writable layer over the snapshot top,
// removed afterwards, so that top stays as it is. It closes the state
// first: a command may run for hours, and builds can use the state dir
// meanwhile (cleanup by other processes spares the scratch layer and dir,
// which carry our pid).
func (s *State) runScratch(ctx context.Context, top, kind string, spec executor.Spec) error {
	lowers, err := s.worker.Lowers(top)
	if err != nil {
		return err
	}
	id := strconv.Itoa(os.Getpid()) + "-" + kind
	if err := s.Snapshots.Prepare(id, lowers...); err != nil {
		return err
	}
	defer s.Snapshots.Remove(id)
	state, err := os.MkdirTemp(s.tmp, strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(state)
	if err := s.Close(); err != nil {
		return err
	}
	spec.Rootfs, spec.UpperDir, spec.StateDir = s.Snapshots.Mounts(id, lowers), s.Snapshots.UpperDir(id), state
	return executor.Run(ctx, spec)
}
