package gc

import (
	"fmt"
	"io"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/builder-dev/builder/cache/gcplan"
	"github.com/docker/go-units"
)

// WriteDiskUsage writes du as `builder du` shows it: a table of the
// records (full ids, parents and exact byte counts when verbose), then the
// totals. now is the time the LAST USED column counts from.
func WriteDiskUsage(out io.Writer, du *gcplan.DiskUsage, verbose bool, now time.Time) error {
	w := tabwriter.NewWriter(out, 0, 4, 3, ' ', 0)
	if verbose {
		fmt.Fprintln(w, "ID\tPARENT\tSIZE\tBYTES\tLAST USED\tSHARED\tIN USE\tDESCRIPTION")
	} else {
		fmt.Fprintln(w, "ID\tSIZE\tLAST USED\tSHARED\tIN USE\tDESCRIPTION")
	}
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
			fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", id, r.Parent, humanSize(r.Size), r.Size, ago(now, r.LastUsed), shared, inUse, r.Description)
		} else {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", id, humanSize(r.Size), ago(now, r.LastUsed), shared, inUse, r.Description)
		}
	}
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Fprintf(out, "\nTotal:\t\t%s\n", humanSize(du.Total))
	fmt.Fprintf(out, "In use by images:\t%s\n", humanSize(du.InUse))
	_, err := fmt.Fprintf(out, "Reclaimable:\t%s\n", humanSize(du.Reclaimable))
	return err
}

// Summary says what rep counts: "N layers, N cache records and N blobs",
// after the kept failures if any.
func (rep *PruneReport) Summary() string {
	c := fmt.Sprintf("%s, %s and %s", Plural(rep.Snapshots, "layer"), Plural(rep.Keys, "cache record"), Plural(rep.Blobs, "blob"))
	if rep.Kept > 0 {
		c = Plural(rep.Kept, "kept failure") + ", " + c
	}
	if rep.Projects > 0 {
		c = Plural(rep.Projects, "project context") + ", " + c
	}
	if rep.FileSums > 0 {
		c += " (and " + Plural(rep.FileSums, "context file digest record") + ")"
	}
	return c
}

// Plan says what a dry run's rep would do, for the prune confirmation.
func (rep *PruneReport) Plan() string {
	return fmt.Sprintf("This removes %s, freeing %s (of %s).", rep.Summary(), humanSize(rep.Freed), humanSize(rep.Before))
}

// Done says what rep removed, for the end of a prune.
func (rep *PruneReport) Done() string {
	return fmt.Sprintf("Removed %s.\nTotal reclaimed space: %s\n", rep.Summary(), humanSize(rep.Freed))
}

// Empty reports whether a prune removes nothing.
func (rep *PruneReport) Empty() bool {
	return rep.Snapshots+rep.Keys+rep.Blobs+rep.Kept+rep.Projects == 0
}

// ParseDuration is time.ParseDuration that also takes days ("7d"), for
// prune's until filter.
func ParseDuration(v string) (time.Duration, error) {
	if n, ok := strings.CutSuffix(v, "d"); ok {
		days, err := strconv.ParseFloat(n, 64)
		if err != nil || days < 0 {
			return 0, fmt.Errorf("invalid duration %q", v)
		}
		return time.Duration(days * float64(24*time.Hour)), nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("invalid duration %q (e.g. 30m, 24h, 7d)", v)
	}
	return d, nil
}

func humanSize(n int64) string { return units.HumanSizeWithPrecision(float64(n), 3) }

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
		return Plural(int(d/time.Minute), "minute") + " ago"
	case d < 48*time.Hour:
		return Plural(int(d/time.Hour), "hour") + " ago"
	default:
		return Plural(int(d/(24*time.Hour)), "day") + " ago"
	}
}

// Plural is "1 unit" or "n units", for the reports of prune and du (and
// the commands' own counts).
func Plural(n int, unit string) string {
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
