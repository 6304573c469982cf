package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/cmd/builder/internal/buildopts"
	"github.com/builder-dev/builder/executor"
	"github.com/builder-dev/builder/platform"
	"github.com/builder-dev/builder/run"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/spf13/cobra"
)

func newImagesCommand(g *globalOptions) *cobra.Command {
	return &cobra.Command{
		Use:   "images",
		Short: "List the images in the local store",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return withState(cmd, g, func(st *build.State) error {
				return st.Images.WriteList(cmd.OutOrStdout())
			})
		},
	}
}

func newRunCommand(g *globalOptions) *cobra.Command {
	var rf buildopts.Resources
	var network, platformFlag string
	cmd := &cobra.Command{
		Use:   "run IMAGE [COMMAND [ARG...]]",
		Short: "Run a command in an image of the local store (changes are discarded)",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			limits, err := rf.Limits()
			if err != nil {
				return err
			}
			var want *ocispec.Platform
			if platformFlag != "" {
				p, err := platform.Parse(platformFlag)
				if err != nil {
					return fmt.Errorf("--platform: %w", err)
				}
				want = &p
			}
			st, err := openState(cmd, g)
			if err != nil {
				return err
			}
			defer st.Close()
			err = run.Image(context.WithoutCancel(cmd.Context()), st, run.Options{
				Image: args[0], Args: args[1:],
				Stdin: os.Stdin, Stdout: cmd.OutOrStdout(), Stderr: cmd.ErrOrStderr(),
				Resources: limits,
				Network:   network,
				Platform:  want,
			})
			var oom *executor.OOMError
			if errors.As(err, &oom) {
				fmt.Fprintln(cmd.ErrOrStderr(), "builder run:", oom)
			}
			var ee *executor.ExitError
			if errors.As(err, &ee) {
				return exitCodeError{ee.Code}
			}
			return err
		},
	}
	cmd.Flags().SetInterspersed(false)
	buildopts.AddResources(cmd.Flags(), &rf)
	cmd.Flags().StringVar(&network, "network", "default", "network: default (private, with outbound access), none or host")
	cmd.Flags().StringVar(&platformFlag, "platform", "", "the platform's image of a multi-platform image (default: the host's); a non-native one runs under QEMU emulation")
	return cmd
}
