// Command builder builds OCI images from Dockerfiles without a daemon.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/builder-dev/builder/executor"
	"github.com/builder-dev/builder/internal/cpuprofile"
	"github.com/builder-dev/builder/internal/gcpace"
	"github.com/builder-dev/builder/internal/userns"
	"github.com/spf13/cobra"
)

// version is set at link time.
var version = "dev"

// exitCodeError makes the process exit with a given code without another
// message (the error was reported already).
type exitCodeError struct{ code int }

func (e exitCodeError) Error() string { return fmt.Sprintf("exit status %d", e.code) }

// ExitStatus lets `builder serve` send the code to its client.
func (e exitCodeError) ExitStatus() int { return e.code }

func main() {
	// A sandbox init re-executes this binary; it must start before anything else.
	executor.Init()
	// An ordinary user's builder continues as root of its own user namespace.
	if !doctorRunsOutsideUserns(os.Args) {
		userns.Init(func(w string) { fmt.Fprintln(os.Stderr, "WARNING:", w) })
	}
	// Collect rarely while the heap is small, under a soft memory limit
	// (gcpace says why); GOGC or GOMEMLIMIT in the environment overrides.
	gcpace.Init()

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	stopProfile := cpuprofile.Start()
	root := newRootCommand()
	err := root.ExecuteContext(ctx)
	stopProfile()
	if err == nil {
		return
	}
	var ec exitCodeError
	if errors.As(err, &ec) {
		os.Exit(ec.code)
	}
	fmt.Fprintln(os.Stderr, "ERROR:", printable(err.Error()))
	os.Exit(1)
}

type globalOptions struct {
	root     string
	insecure []string
	remoteFlags
}

func newRootCommand() *cobra.Command {
	g := &globalOptions{}
	cmd := &cobra.Command{
		Use:           "builder",
		Short:         "Build OCI images from Dockerfiles, without a daemon",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	cmd.PersistentFlags().StringVar(&g.root, "root", "", "state directory (default /var/lib/builder as root, $XDG_DATA_HOME/builder otherwise)")
	cmd.PersistentFlags().StringArrayVar(&g.insecure, "insecure-registry", nil, "registry host to reach over plain HTTP (loopback registries always are)")
	cmd.AddCommand(newBuildCommand(g), newBakeCommand(g), newImagesCommand(g), newRunCommand(g), newVersionCommand(), newDuCommand(g), newPruneCommand(g), newHistoryCommand(g), newDebugCommand(g), newDoctorCommand())
	cmd.AddCommand(newStoreCommands(g)...)
	addServe(cmd, g) // builder serve and --host (serve.go)
	return cmd
}

func newVersionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "Print the version",
		Args:  cobra.NoArgs,
		Run: func(cmd *cobra.Command, _ []string) {
			fmt.Fprintln(cmd.OutOrStdout(), "builder", version)
		},
	}
}
