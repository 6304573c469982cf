package bake

import (
	"reflect"
	"strings"
	"testing"
)

// TestComposeXBake: a build section's x-bake fields add to compose's
// (lists, with a string as a one-word list), replace its scalars, and the
// image name is a tag only when no tags are given, as buildx.
func TestComposeXBake(t *testing.T) {
	dir := writeFiles(t, map[string]string{"compose.yaml": `
services:
  addon:
    image: ct-addon:bar
    build:
      context: .
      cache_from: [user/app:base]
      x-bake:
        tags: [ct-addon:foo, ct-addon:alp]
        platforms: [linux/amd64, linux/arm64]
        cache-from: [user/app:cache, user/app:base]
        cache-to: type=local,dest=path/to/cache
        pull: true
        contexts: {tools: ./tools}
  aws:
    image: ct-fake-aws:bar
    build:
      dockerfile: ./aws.Dockerfile
      no_cache: false
      x-bake:
        secret:
          - id=mysecret,src=./secret
        platforms: linux/arm64
        output: type=docker
        no-cache: true
`})
	got := resolve(t, dir, nil, nil, nil)
	addon, aws := got["addon"], got["aws"]
	for _, c := range []struct {
		name      string
		got, want any
	}{
		{"addon tags", addon.Tags, []string{"ct-addon:foo", "ct-addon:alp"}},
		{"addon platforms", addon.Platforms, []string{"linux/amd64", "linux/arm64"}},
		{"addon cache-from", addon.CacheFrom, []string{"user/app:base", "user/app:cache"}},
		{"addon cache-to", addon.CacheTo, []string{"type=local,dest=path/to/cache"}},
		{"addon pull", *addon.Pull, true},
		{"addon contexts", addon.Contexts, map[string]string{"tools": "./tools"}},
		{"aws tags", aws.Tags, []string{"ct-fake-aws:bar"}},
		{"aws secret", aws.Secrets, []string{"id=mysecret,src=./secret"}},
		{"aws platforms", aws.Platforms, []string{"linux/arm64"}},
		{"aws output", aws.Outputs, []string{"type=docker"}},
		{"aws no-cache", *aws.NoCache, true},
	} {
		if !reflect.DeepEqual(c.got, c.want) {
			t.Errorf("%s = %v, want %v", c.name, c.got, c.want)
		}
	}
	dir = writeFiles(t, map[string]string{"compose.yaml": "services:\n  a:\n    build:\n      x-bake:\n        colour: red\n"})
	files, _ := Files(dir, nil)
	if _, err := Load(files, nil); err == nil || !strings.Contains(err.Error(), `x-bake: unknown field "colour"`) {
		t.Errorf("unknown x-bake field: err = %v", err)
	}
}
