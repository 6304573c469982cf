package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/cmd/builder/internal/buildopts"
	"github.com/builder-dev/builder/history"
	"github.com/docker/go-units"
	"github.com/opencontainers/go-digest"
	"github.com/spf13/cobra"
)

// historyStore is the state directory's build history. It does not open
// the state (no lock): records are files written by atomic rename.
func historyStore(g *globalOptions) *history.Store {
	root := g.root
	if root == "" {
		root = build.DefaultRoot()
	}
	if abs, err := filepath.Abs(root); err == nil {
		root = abs
	}
	return &history.Store{Dir: filepath.Join(root, "history")}
}

// recordBuild writes the history record of a finished build. It never
// fails the build: a problem is a warning.
func recordBuild(cmd *cobra.Command, g *globalOptions, rec *history.Record, r *history.Recorder, res *build.Result, buildErr error) {
	rec.End = time.Now()
	var logs map[int][]byte
	rec.Steps, logs = r.Result()
	if res != nil {
		rec.Digest = res.Manifest.Digest.String()
	}
	if buildErr != nil {
		rec.Error = buildErr.Error()
	}
	if err := historyStore(g).Add(rec, logs); err != nil {
		fmt.Fprintln(cmd.ErrOrStderr(), "WARNING: build history:", err)
	}
}

func newHistoryRecord(f *buildopts.Flags, contextDir, dockerfilePath string, df []byte, start time.Time) *history.Record {
	rec := &history.Record{
		ID: history.NewID(start), Start: start, Args: history.RedactArgs(os.Args),
		Target: f.Target, Outputs: f.Outputs, Tags: f.Tags,
		DockerfileDigest: digest.FromBytes(df).String(),
	}
	rec.ContextDir, _ = filepath.Abs(contextDir)
	if dockerfilePath != "" {
		rec.DockerfilePath, _ = filepath.Abs(dockerfilePath)
	}
	return rec
}

func newHistoryCommand(g *globalOptions) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "history",
		Short: "List recent builds (see history inspect, logs, rm)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			format, _ := cmd.Flags().GetString("format")
			return listHistory(cmd.OutOrStdout(), historyStore(g), format)
		},
	}
	cmd.Flags().String("format", "table", "table or json")
	inspect := &cobra.Command{
		Use:   "inspect BUILD",
		Short: "Show one build: its steps, why each ran, timings (BUILD: an ID, a unique part of one, or LAST)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			format, _ := cmd.Flags().GetString("format")
			explain, _ := cmd.Flags().GetBool("explain")
			return inspectHistory(cmd.OutOrStdout(), historyStore(g), args[0], format, explain)
		},
	}
	inspect.Flags().String("format", "text", "text or json")
	inspect.Flags().Bool("explain", false, "compare with the build before it of the same Dockerfile: which steps changed from cached to run and why")
	logs := &cobra.Command{
		Use:   "logs BUILD STEP",
		Short: "Print the kept output (last 64 KiB) of one step of a build",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			s := historyStore(g)
			id, err := s.Resolve(args[0])
			if err != nil {
				return err
			}
			n, err := strconv.Atoi(strings.TrimPrefix(args[1], "#"))
			if err != nil {
				return fmt.Errorf("step %q: want the step's number, as #N in the build's output", args[1])
			}
			b, err := s.Logs(id, n)
			if err != nil {
				return err
			}
			_, err = cmd.OutOrStdout().Write(b)
			return err
		},
	}
	rm := &cobra.Command{
		Use:   "rm BUILD...",
		Short: "Remove build records",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s := historyStore(g)
			for _, a := range args {
				id, err := s.Resolve(a)
				if err != nil {
					return err
				}
				if err := s.Remove(id); err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), id)
			}
			return nil
		},
	}
	cmd.AddCommand(inspect, logs, rm)
	return cmd
}

func listHistory(w io.Writer, s *history.Store, format string) error {
	recs, err := s.List()
	if err != nil {
		return err
	}
	switch format {
	case "json":
		return json.NewEncoder(w).Encode(recs)
	case "table":
	default:
		return fmt.Errorf("--format %s: use table or json", format)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTARTED\tTARGET\tRESULT\tDURATION\tSTEPS RUN/CACHED\tCONTEXT")
	for _, r := range recs {
		ran, cached := r.Counts()
		result := "ok"
		if !r.Succeeded() {
			result = "failed"
		}
		target := r.Target
		if target == "" {
			target = "(last stage)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d/%d\t%s\n", r.ID, r.Start.Local().Format("2006-01-02 15:04:05"), target,
			result, r.End.Sub(r.Start).Round(time.Millisecond), ran, cached, r.ContextDir)
	}
	return tw.Flush()
}

func inspectHistory(w io.Writer, s *history.Store, ref, format string, explain bool) error {
	id, err := s.Resolve(ref)
	if err != nil {
		return err
	}
	r, err := s.Get(id)
	if err != nil {
		return err
	}
	if format == "json" {
		return json.NewEncoder(w).Encode(r)
	} else if format != "text" {
		return fmt.Errorf("--format %s: use text or json", format)
	}
	fmt.Fprintf(w, "ID:         %s\nStarted:    %s\nDuration:   %s\nCommand:    %s\nContext:    %s\n",
		r.ID, r.Start.Local().Format(time.RFC3339), r.End.Sub(r.Start).Round(time.Millisecond), strings.Join(r.Args, " "), r.ContextDir)
	if r.DockerfilePath != "" {
		fmt.Fprintf(w, "Dockerfile: %s (%s)\n", r.DockerfilePath, r.DockerfileDigest)
	} else {
		fmt.Fprintf(w, "Dockerfile: stdin (%s)\n", r.DockerfileDigest)
	}
	if r.Succeeded() {
		fmt.Fprintf(w, "Result:     ok, image %s\n", r.Digest)
	} else {
		fmt.Fprintf(w, "Result:     failed: %s\n", r.Error)
	}
	ran, cached := r.Counts()
	fmt.Fprintf(w, "Steps:      %d run, %d cached\n", ran, cached)
	for _, st := range r.Steps {
		line := fmt.Sprintf("  #%d %s: %s", st.Index, st.Name, strings.ToUpper(st.Status))
		if st.Status != "cached" && st.Duration > 0 {
			line += fmt.Sprintf(" %.1fs", st.Duration.Seconds())
		}
		if u := st.Usage; u != nil {
			line += fmt.Sprintf(" (cpu %.1fs, peak %s, read %s, written %s)", u.CPU.Seconds(),
				units.BytesSize(float64(u.PeakMemory)), units.BytesSize(float64(u.ReadBytes)), units.BytesSize(float64(u.WriteBytes)))
		}
		if st.Reason != "" {
			line += " (" + st.Reason + ")"
		}
		fmt.Fprintln(w, line)
	}
	if explain {
		return explainAgainstPrevious(w, s, r)
	}
	return nil
}

// explainAgainstPrevious compares r with the newest earlier build of the
// same Dockerfile (path, or digest for stdin) and context.
func explainAgainstPrevious(w io.Writer, s *history.Store, r *history.Record) error {
	recs, err := s.List()
	if err != nil {
		return err
	}
	var prev *history.Record
	for _, p := range recs {
		if p.ID >= r.ID || p.ContextDir != r.ContextDir {
			continue
		}
		if (r.DockerfilePath != "" && p.DockerfilePath == r.DockerfilePath) || (r.DockerfilePath == "" && p.DockerfileDigest == r.DockerfileDigest) {
			prev = p
			break
		}
	}
	if prev == nil {
		fmt.Fprintln(w, "explain: no earlier build of this Dockerfile and context is recorded")
		return nil
	}
	fmt.Fprintf(w, "explain: compared with %s (%s)\n", prev.ID, prev.Start.Local().Format(time.RFC3339))
	if prev.DockerfileDigest != r.DockerfileDigest {
		fmt.Fprintln(w, "  the Dockerfile changed")
	}
	was := map[string]string{}
	for _, st := range prev.Steps {
		was[st.Name] = st.Status
	}
	changed := 0
	for _, st := range r.Steps {
		if st.Status == "cached" {
			continue
		}
		if before, ok := was[st.Name]; ok {
			fmt.Fprintf(w, "  %s: %s before, ran now: %s\n", st.Name, before, orUnknown(st.Reason))
		} else {
			fmt.Fprintf(w, "  %s: new step (%s)\n", st.Name, orUnknown(st.Reason))
		}
		changed++
	}
	if changed == 0 {
		fmt.Fprintln(w, "  every step was reused from the cache")
	}
	return nil
}

func orUnknown(reason string) string {
	if reason == "" {
		return "no reason recorded"
	}
	return reason
}
