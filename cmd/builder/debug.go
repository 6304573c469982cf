package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/executor"
	"github.com/builder-dev/builder/run"
	"github.com/spf13/cobra"
	"golang.org/x/term"
)

// The --on-error hooks are run's; build.go names them so.
var (
	debugShell  = run.DebugShell
	keepFailure = run.KeepFailure
)

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
					return st.Kept.WriteList(cmd.OutOrStdout())
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
