package main

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/builder-dev/builder/gc"
	"github.com/spf13/cobra"
)

type pruneFlags struct {
	all         bool
	keepStorage string
	filters     []string
	force       bool
	history     bool
}

func newPruneCommand(g *globalOptions) *cobra.Command {
	f := &pruneFlags{}
	cmd := &cobra.Command{
		Use:   "prune",
		Short: "Remove build cache that no image of the local store needs",
		Long: `Remove build cache: layers, cache records and blobs that no image of the
local store needs. --all also removes the manifests and configs of resolved
base images and of replaced images. Without --force it asks for
confirmation on a terminal, and refuses without one.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runPrune(cmd, g, f) },
	}
	fl := cmd.Flags()
	fl.BoolVarP(&f.all, "all", "a", false, "also remove manifests and configs no image references")
	fl.StringVar(&f.keepStorage, "keep-storage", "", "remove least recently used cache only until the total is at most this size (e.g. 5GB, 512MiB)")
	fl.StringArrayVar(&f.filters, "filter", nil, "until=DURATION: keep cache used within DURATION (e.g. 24h, 7d)")
	fl.BoolVarP(&f.force, "force", "f", false, "do not ask for confirmation")
	fl.BoolVar(&f.history, "history", false, "remove the build history records instead of cache")
	return cmd
}

func runPrune(cmd *cobra.Command, g *globalOptions, f *pruneFlags) error {
	if f.history {
		n, err := historyStore(g).Clear()
		fmt.Fprintf(cmd.OutOrStdout(), "Removed %s.\n", gc.Plural(n, "build record"))
		return err
	}
	opt := gc.PruneOptions{All: f.all}
	if f.keepStorage != "" {
		n, err := gc.ParseSize(f.keepStorage)
		if err != nil {
			return fmt.Errorf("--keep-storage: %w", err)
		}
		opt.KeepStorage = n
	}
	for _, fl := range f.filters {
		k, v, _ := strings.Cut(fl, "=")
		switch k {
		case "until", "unused-for":
			d, err := gc.ParseDuration(v)
			if err != nil {
				return fmt.Errorf("--filter %s: %w", fl, err)
			}
			opt.Until = d
		default:
			return fmt.Errorf("--filter %s: unsupported filter (supported: until=DURATION)", fl)
		}
	}
	st, err := openState(cmd, g)
	if err != nil {
		return err
	}
	defer st.Close()
	out := cmd.OutOrStdout()
	if !f.force {
		dry := opt
		dry.DryRun = true
		rep, err := st.Prune(cmd.Context(), dry)
		if err != nil {
			return err
		}
		if rep.Empty() {
			fmt.Fprintln(out, "Nothing to prune.")
			return nil
		}
		what := rep.Plan()
		if !isTerminal(cmd.InOrStdin()) {
			fmt.Fprintln(out, what)
			return errors.New("not pruning without confirmation: stdin is not a terminal; pass --force")
		}
		fmt.Fprintf(out, "%s\nAre you sure you want to continue? [y/N] ", what)
		answer, _ := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(answer)); a != "y" && a != "yes" {
			fmt.Fprintln(out, "Nothing pruned.")
			return nil
		}
	}
	rep, err := st.Prune(cmd.Context(), opt)
	if rep != nil {
		fmt.Fprint(out, rep.Done())
	}
	return err
}

// isTerminal reports whether r is a character device other than
// /dev/null, as a terminal is.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	if err != nil || fi.Mode()&os.ModeCharDevice == 0 {
		return false
	}
	null, err := os.Stat(os.DevNull)
	return err != nil || !os.SameFile(fi, null)
}
