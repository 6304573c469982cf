// Package run starts commands in throwaway sandboxes over what a state
// directory holds: `builder run` over a stored image, `builder debug` over
// a failed step kept by --on-error=keep. Each command gets a fresh
// writable layer, removed afterwards, so the image or kept state stays as
// it was. It is not part of a build: it only reads the state's stores.
package run

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/executor"
	"github.com/builder-dev/builder/executor/cgroup"
	"github.com/builder-dev/builder/frontend/dockerfile"
	"github.com/builder-dev/builder/imagestore"
	"github.com/builder-dev/builder/platform"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Options describe a command run in an image.
type Options struct {
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
	// Platform chooses the image of a multi-platform image (--platform);
	// nil is the host's. A non-native one runs under QEMU emulation.
	Platform *ocispec.Platform
}

// Image runs a command in a fresh writable layer over a stored image, as
// `docker run --rm` would, and removes the layer afterwards.
func Image(ctx context.Context, s *build.State, opt Options) error {
	network, err := runNetwork(opt.Network)
	if err != nil {
		return err
	}
	rec, err := s.Images.Image(opt.Image)
	if err != nil {
		return err
	}
	want := platform.Host()
	if opt.Platform != nil {
		want = *opt.Platform
	}
	pi, err := imagestore.Pick(rec, want)
	if err != nil {
		return err
	}
	raw, err := s.Content.ReadAll(pi.Manifest.Digest)
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
	if opt.Platform != nil && img.OS != "" && (img.OS != want.OS || img.Architecture != want.Architecture) {
		return fmt.Errorf("image %s is for %s/%s, not %s", opt.Image, img.OS, img.Architecture, platform.Format(want))
	}
	if err := platform.CheckRunnable(ocispec.Platform{OS: img.OS, Architecture: img.Architecture, Variant: img.Variant}); img.OS != "" && err != nil {
		return fmt.Errorf("running %s: %w", opt.Image, err)
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
	return scratch(ctx, s, pi.Snapshot, "run", executor.Spec{
		Args:  args,
		Env:   img.Config.Env,
		Cwd:   img.Config.WorkingDir,
		User:  img.Config.User,
		Stdin: opt.Stdin, Stdout: opt.Stdout, Stderr: opt.Stderr,
		Resources: opt.Resources,
		Network:   network,
	})
}

// runNetwork is the executor's network for `builder run --network`. Like
// `docker run --network=host`, the command line itself grants it.
func runNetwork(n string) (string, error) {
	switch n {
	case "", "default":
		return executor.NetworkDefault, nil
	case "none":
		return executor.NetworkNone, nil
	case "host":
		return executor.NetworkHost, nil
	}
	return "", fmt.Errorf("--network=%s: want default, none or host", n)
}

// scratch runs spec on a fresh writable layer over the snapshot top,
// removed afterwards, so that top stays as it is. It closes the state
// first: a command may run for hours, and builds can use the state dir
// meanwhile (cleanup by other processes spares the scratch layer and dir,
// which carry our pid).
func scratch(ctx context.Context, s *build.State, top, kind string, spec executor.Spec) error {
	lowers, err := s.Lowers(top)
	if err != nil {
		return err
	}
	id := strconv.Itoa(os.Getpid()) + "-" + kind
	if err := s.Snapshots.Prepare(id, lowers...); err != nil {
		return err
	}
	defer s.Snapshots.Remove(id)
	state, err := os.MkdirTemp(s.TmpDir(), strconv.Itoa(os.Getpid())+"-")
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
