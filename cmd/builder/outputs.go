package main

import (
	"encoding/json"
	"os"
	"strings"

	"github.com/builder-dev/builder/build"
	"github.com/opencontainers/go-digest"
)

// writeJSONFile writes v to file as indented JSON (--metadata-file).
func writeJSONFile(file string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(file, append(b, '\n'), 0o644)
}

// metadataOf is the --metadata-file object of one build.
func metadataOf(res *build.Result, checks []build.CheckWarning) map[string]any {
	md := map[string]any{
		"containerimage.digest":     res.Manifest.Digest,
		"containerimage.descriptor": res.Manifest,
	}
	if res.Config != nil { // an index (several platforms) has no config
		md["containerimage.config.digest"] = digest.FromBytes(res.Config)
	}
	if len(res.Steps) > 0 {
		// Ours, not buildx's: what each step that ran a process used.
		md["builder.steps"] = res.Steps
	}
	if len(res.Names) > 0 {
		md["image.name"] = strings.Join(res.Names, ",")
	}
	if len(checks) > 0 {
		md["buildx.build.warnings"] = buildxWarnings(checks)
	}
	return md
}
