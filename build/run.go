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
	rec, err := s.Image(opt.Image)
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
	lowers, err := s.worker.Lowers(rec.Snapshot)
	if err != nil {
		return err
	}
	// The scratch layer's id carries our pid so that cleanup by another
	// process leaves it alone while we run.
	id := strconv.Itoa(os.Getpid()) + "-run"
	if err := s.Snapshots.Prepare(id, lowers...); err != nil {
		return err
	}
	defer s.Snapshots.Remove(id)
	state, err := os.MkdirTemp(s.tmp, strconv.Itoa(os.Getpid())+"-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(state)
	// A command may run for hours; let builds use the state dir meanwhile.
	// Cleanup by other processes spares our scratch dirs, which carry our pid.
	if err := s.Close(); err != nil {
		return err
	}
	return executor.Run(ctx, executor.Spec{
		Rootfs: s.Snapshots.Mounts(id, lowers),
		Args:   args,
		Env:    img.Config.Env,
		Cwd:    img.Config.WorkingDir,
		User:   img.Config.User,
		Stdin:  opt.Stdin, Stdout: opt.Stdout, Stderr: opt.Stderr,
		StateDir:  state,
		Resources: opt.Resources,
		Network:   network,
	})
}
