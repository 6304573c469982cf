package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"

	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/executor"
	"github.com/builder-dev/builder/progress"
	"github.com/builder-dev/builder/run"
	"github.com/builder-dev/builder/solver/ops"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// debugShell returns the OnRunFailure hook of --on-error=shell: a shell on
// the terminal in the failed step's sandbox (its files as the command left
// them, its environment, user, working directory and mounts). The build
// then ends with the step's error as it would have.
func debugShell(tty *os.File, gate *progress.Gate) func(context.Context, ops.RunFailure) {
	var once sync.Mutex
	return func(ctx context.Context, f ops.RunFailure) {
		// One shell at a time, for the first failures to get here.
		once.Lock()
		defer once.Unlock()
		defer gate.Hold()()
		fmt.Fprintf(tty, "\n%s failed: %v\n", f.Step, f.Err)
		fmt.Fprintln(tty, "Debug shell in the step's sandbox, with the files as the command left them; exit it to end the build.")
		spec := f.Spec
		spec.Args = []string{"/bin/sh"}
		spec.Env = append(spec.Env[:len(spec.Env):len(spec.Env)], "PS1=(debug) \\w \\$ ")
		spec.Stdin, spec.Stdout, spec.Stderr = tty, tty, tty
		spec.Terminal = true
		spec.Usage = nil // the step's figures stay the step's
		if err := executor.Run(ctx, spec); err != nil {
			if _, ok := err.(*executor.ExitError); !ok {
				fmt.Fprintf(tty, "debug shell: %v\n", err)
			}
		}
	}
}

// keepFailure returns the OnRunFailure hook of --on-error=keep: the failed
// step's filesystem is kept, for `builder debug` to open a shell in later.
func keepFailure(st *build.State, warn io.Writer) func(context.Context, ops.RunFailure) {
	var mu sync.Mutex
	return func(ctx context.Context, f ops.RunFailure) {
		mu.Lock()
		defer mu.Unlock()
		id, err := st.Kept.Keep(f)
		if err != nil {
			fmt.Fprintln(warn, "WARNING:", err)
			return
		}
		fmt.Fprintf(warn, "kept the failed step's filesystem as %s: builder debug %s (or LAST) opens a shell in it; builder prune removes it\n", id, id)
	}
}

// onErrorTerminal checks that --on-error=shell has a terminal to use.
func onErrorTerminal(mode string) (*os.File, error) {
	switch mode {
	case "", "fail", "keep":
		return nil, nil
	case "shell":
	default:
		return nil, fmt.Errorf("--on-error=%s: use fail, shell or keep", mode)
	}
	for _, f := range []*os.File{os.Stdin, os.Stdout, os.Stderr} {
		if !term.IsTerminal(int(f.Fd())) {
			return nil, fmt.Errorf("--on-error=shell needs a terminal: %s is not one (run builder from an interactive shell, or drop --on-error)", f.Name())
		}
	}
	return os.Stdin, nil
}

func newDebugCommand(g *globalOptions) *cobra.Command {
	var list bool
	cmd := &cobra.Command{
		Use:   "debug [KEPT [COMMAND [ARG...]]]",
		Short: "Open a shell in a failed step kept by build --on-error=keep (KEPT: its ID, a unique part of one, or LAST)",
		Args:  cobra.ArbitraryArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return withState(cmd, g, func(st *build.State) error {
				if list {
					kept, err := st.Kept.List()
					if err != nil {
						return err
					}
					for _, k := range kept {
						fmt.Fprintf(cmd.OutOrStdout(), "%s\t%s\t%s\n", k.ID, k.Step, k.Error)
					}
					return nil
				}
				ref := "last"
				if len(args) > 0 {
					ref, args = args[0], args[1:]
				}
				err := run.Debug(cmd.Context(), st, run.DebugOptions{
					Ref: ref, Args: args, Stdin: cmd.InOrStdin(), Stdout: cmd.OutOrStdout(), Stderr: cmd.ErrOrStderr(),
					Terminal: isTerminal(cmd.InOrStdin()),
					Notice:   func(n string) { fmt.Fprintln(cmd.ErrOrStderr(), "NOTE:", n) },
				})
				var exit *executor.ExitError
				if errors.As(err, &exit) {
					return exitCodeError{exit.Code}
				}
				return err
			})
		},
	}
	cmd.Flags().BoolVar(&list, "list", false, "list the kept failures")
	cmd.Flags().SetInterspersed(false) // the command's own flags are its own
	return cmd
}
