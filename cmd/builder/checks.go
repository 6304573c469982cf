package main

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/gc"
)

// printChecks reports the build checks' findings after the build's
// progress: one line each, "WARNING: Dockerfile:LINE: Rule: detail", or
// with --progress=rawjson one "warning" event each.
func printChecks(w io.Writer, mode string, warnings []build.CheckWarning) {
	if len(warnings) == 0 {
		return
	}
	if mode == "rawjson" {
		enc := json.NewEncoder(w)
		now := time.Now().UTC().Format(time.RFC3339Nano)
		for _, c := range warnings {
			enc.Encode(struct {
				Time string `json:"time"`
				Kind string `json:"kind"`
				build.CheckWarning
			}{now, "warning", c})
		}
		return
	}
	fmt.Fprintf(w, "%s found:\n", gc.Plural(len(warnings), "warning"))
	for _, c := range warnings {
		fmt.Fprintln(w, "WARNING:", c)
	}
}

// buildxWarnings is the findings as buildx writes them into its metadata
// file ("buildx.build.warnings": BuildKit's VertexWarning, whose byte
// fields are base64 in JSON), so tools that read it read ours.
func buildxWarnings(warnings []build.CheckWarning) []map[string]any {
	var out []map[string]any
	for _, c := range warnings {
		short := fmt.Sprintf("%s: %s (line %d)", c.Rule, c.Detail, c.Line)
		out = append(out, map[string]any{
			"level":      1,
			"short":      base64.StdEncoding.EncodeToString([]byte(short)),
			"detail":     []string{base64.StdEncoding.EncodeToString([]byte(c.Description))},
			"url":        c.URL,
			"sourceInfo": map[string]any{"filename": c.File},
			"range":      []map[string]any{{"start": map[string]int{"line": c.Line}, "end": map[string]int{"line": c.Line}}},
		})
	}
	return out
}

// runCheck is `builder build --check`: the checks alone, printed to
// stdout; exit status 1 when any rule fired.
func runCheck(ctx context.Context, w io.Writer, st *build.State, opt build.Options) error {
	res, err := st.Check(ctx, opt)
	if err != nil {
		return err
	}
	for _, c := range res.Warnings {
		fmt.Fprintln(w, "WARNING:", c)
	}
	if len(res.Warnings) == 0 {
		fmt.Fprintln(w, "Check complete, no warnings found.")
		return nil
	}
	fmt.Fprintf(w, "Check complete, %s found.\n", gc.Plural(len(res.Warnings), "warning"))
	return exitCodeError{code: 1}
}
