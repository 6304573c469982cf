package main

import (
	"time"

	"github.com/builder-dev/builder/gc"
	"github.com/spf13/cobra"
)

func newDuCommand(g *globalOptions) *cobra.Command {
	var verbose bool
	cmd := &cobra.Command{
		Use:   "du",
		Short: "Show the disk usage of the build cache and the local image store",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			st, err := openState(cmd, g)
			if err != nil {
				return err
			}
			defer st.Close()
			du, err := st.DiskUsage(cmd.Context())
			if err != nil {
				return err
			}
			return gc.WriteDiskUsage(cmd.OutOrStdout(), du, verbose, time.Now())
		},
	}
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "full ids, parents and exact byte counts")
	return cmd
}
