package main

import "github.com/builder-dev/builder/cache/remote"

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
