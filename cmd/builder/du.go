package main

import (
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/docker/go-units"
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
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 3, ' ', 0)
			if verbose {
				fmt.Fprintln(w, "ID\tPARENT\tSIZE\tBYTES\tLAST USED\tSHARED\tIN USE\tDESCRIPTION")
			} else {
				fmt.Fprintln(w, "ID\tSIZE\tLAST USED\tSHARED\tIN USE\tDESCRIPTION")
			}
			now := time.Now()
			for _, r := range du.Records {
				id, shared, inUse := r.ID, "private", "-"
				if !verbose {
					id = shortID(id)
				}
				if r.Shared {
					shared = "shared"
				}
				if r.InUse {
					inUse = "image"
				}
				if verbose {
					fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", id, r.Parent, units.HumanSizeWithPrecision(float64(r.Size), 3), r.Size, ago(now, r.LastUsed), shared, inUse, r.Description)
				} else {
					fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", id, units.HumanSizeWithPrecision(float64(r.Size), 3), ago(now, r.LastUsed), shared, inUse, r.Description)
				}
			}
			if err := w.Flush(); err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "\nTotal:\t\t%s\n", units.HumanSizeWithPrecision(float64(du.Total), 3))
			fmt.Fprintf(out, "In use by images:\t%s\n", units.HumanSizeWithPrecision(float64(du.InUse), 3))
			fmt.Fprintf(out, "Reclaimable:\t%s\n", units.HumanSizeWithPrecision(float64(du.Reclaimable), 3))
			return nil
		},
	}
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "full ids, parents and exact byte counts")
	return cmd
}

// ago says how long before now t was, coarsely.
func ago(now, t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	d := now.Sub(t)
	switch {
	case d < time.Minute:
		return "just now"
	case d < time.Hour:
		return plural(int(d/time.Minute), "minute") + " ago"
	case d < 48*time.Hour:
		return plural(int(d/time.Hour), "hour") + " ago"
	default:
		return plural(int(d/(24*time.Hour)), "day") + " ago"
	}
}

func plural(n int, unit string) string {
	if n == 1 {
		return "1 " + unit
	}
	return fmt.Sprintf("%d %ss", n, unit)
}

// shortID shortens a blob digest or snapshot id for the table.
func shortID(id string) string {
	if _, enc, ok := strings.Cut(id, ":"); ok && len(enc) > 12 {
		return enc[:12]
	}
	return id
}
