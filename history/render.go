package history

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/docker/go-units"
)

// WriteList prints the recorded builds, newest first: a table, or JSON
// (`builder history`).
func (s *Store) WriteList(w io.Writer, format string) error {
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

// WriteInspect prints one build (ref as Resolve takes it): its steps, why
// each ran, timings; with explain, what changed since the build before it
// (`builder history inspect`).
func (s *Store) WriteInspect(w io.Writer, ref, format string, explain bool) error {
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
func explainAgainstPrevious(w io.Writer, s *Store, r *Record) error {
	recs, err := s.List()
	if err != nil {
		return err
	}
	var prev *Record
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
