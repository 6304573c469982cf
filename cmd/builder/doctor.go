package main

import (
	"fmt"

	"github.com/builder-dev/builder/doctor"
	"github.com/spf13/cobra"
)

// doctorRunsOutsideUserns is checked by main before userns.Init: doctor
// must look at the host as the user who runs it, and must still run when
// entering the user namespace is what fails.
func doctorRunsOutsideUserns(args []string) bool {
	return len(args) > 1 && args[1] == "doctor"
}

func newDoctorCommand() *cobra.Command {
	var format string
	cmd := &cobra.Command{
		Use:   "doctor",
		Short: "Check what this host offers builds (user namespaces, subuids, overlay, cgroups, seccomp, network, emulators), with fixes",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r := doctor.Run(cmd.Context(), doctor.RealHost())
			var err error
			switch format {
			case "text":
				err = r.WriteText(cmd.OutOrStdout())
			case "json":
				err = r.WriteJSON(cmd.OutOrStdout())
			default:
				return fmt.Errorf("--format %q: want text or json", format)
			}
			if err != nil {
				return err
			}
			if r.Failed() {
				return exitCodeError{1}
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&format, "format", "text", "output format: text or json")
	return cmd
}
