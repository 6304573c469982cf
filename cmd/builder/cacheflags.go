package main

import "github.com/builder-dev/builder/build"

// parseCacheSpecs reads --cache-to (export) or --cache-from values.
func parseCacheSpecs(values []string, export bool) ([]build.CacheSpec, error) {
	var out []build.CacheSpec
	for _, v := range values {
		c, err := build.ParseCacheSpec(v, export)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, nil
}
