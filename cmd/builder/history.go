package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/cmd/builder/internal/buildopts"
	"github.com/builder-dev/builder/history"
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
			return historyStore(g).WriteList(cmd.OutOrStdout(), format)
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
			return historyStore(g).WriteInspect(cmd.OutOrStdout(), args[0], format, explain)
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
