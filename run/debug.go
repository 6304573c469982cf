package run

import (
	"context"
	"fmt"
	"io"
	"strings"

	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/executor"
)

// DebugOptions describe `builder debug`.
type DebugOptions struct {
	// Ref names the kept failure: its ID, a unique part of one, or LAST.
	Ref string
	// Args is the command to run; /bin/sh when empty.
	Args           []string
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Terminal says Stdin (an *os.File) is a terminal, for an interactive
	// shell that Ctrl-C reaches (see executor.Spec.Terminal).
	Terminal bool
	// Notice receives what the shell does not get (dropped mounts).
	Notice func(string)
}

// Debug runs a shell (or opt.Args) in a kept failure's filesystem, with the
// step's environment, user, working directory, network and lasting mounts,
// on a scratch layer removed afterwards: the kept state stays as it was.
func Debug(ctx context.Context, s *build.State, opt DebugOptions) error {
	k, err := s.Kept.Find(opt.Ref)
	if err != nil {
		return err
	}
	if len(k.Dropped) > 0 && opt.Notice != nil {
		opt.Notice(fmt.Sprintf("not mounted again (secrets, SSH agents and other stages' files are not kept): %s", strings.Join(k.Dropped, ", ")))
	}
	if !s.Snapshots.Exists(k.Snapshot) {
		return fmt.Errorf("kept failure %s: its layer is gone (a prune removed it)", k.ID)
	}
	args := opt.Args
	if len(args) == 0 {
		args = []string{"/bin/sh"}
	}
	return scratch(ctx, s, k.Snapshot, "debug", executor.Spec{
		Args: args, Env: k.Env, Cwd: k.Cwd, User: k.User, Hostname: k.Hostname, Network: k.Network,
		RunMounts: k.Mounts, Stdin: opt.Stdin, Stdout: opt.Stdout, Stderr: opt.Stderr, Terminal: opt.Terminal,
	})
}
