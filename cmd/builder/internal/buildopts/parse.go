package buildopts

import (
	"os"

	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/cache/remote"
	"github.com/builder-dev/builder/output"
)

// parseCacheSpecs reads --cache-to (export) or --cache-from values.
func parseCacheSpecs(values []string, export bool) ([]remote.Spec, error) {
	var out []remote.Spec
	for _, v := range values {
		c, err := remote.ParseSpec(v, export)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}

// parseOutputs reads -o values in `docker buildx build` syntax.
func ParseOutputs(values []string) ([]output.Spec, error) {
	var out []output.Spec
	for _, v := range values {
		o, err := output.Parse(v)
		if err != nil {
			return nil, err
		}
		out = append(out, o)
	}
	return out, nil
}

// addSourceDateEpoch passes $SOURCE_DATE_EPOCH to the build as a build arg
// unless --build-arg set it, as buildx does.
func addSourceDateEpoch(args map[string]string) {
	if _, ok := args[build.SourceDateEpochArg]; ok {
		return
	}
	if v := os.Getenv(build.SourceDateEpochArg); v != "" {
		args[build.SourceDateEpochArg] = v
	}
}
