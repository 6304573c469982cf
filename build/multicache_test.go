package build_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/builder-dev/builder/build"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// twoPlatformCacheBuild builds a two-platform Dockerfile (a build-platform
// stage, a per-platform RUN) on an empty state dir with the given cache
// specs, and returns the result and the steps that started.
func twoPlatformCacheBuild(t *testing.T, base string, to, from []string, opt build.Options) (*build.Result, []string) {
	t.Helper()
	specs := cacheOptions(t, to, from)
	opt.CacheTo, opt.CacheFrom = specs.CacheTo, specs.CacheFrom
	df := `FROM --platform=$BUILDPLATFORM ` + base + ` AS b
RUN echo shared > /s
ARG TARGETARCH
RUN echo $TARGETARCH > /arch
FROM ` + base + `
COPY --from=b /s /arch /
RUN uname -m > /m
`
	ev := newEvents()
	opt.ContextDir, opt.Dockerfile, opt.DockerfileName, opt.Progress = writeContext(t, nil), []byte(df), "Dockerfile", ev
	opt.BuildArgs = map[string]string{"SOURCE_DATE_EPOCH": "1700000000"}
	opt.Platforms = []ocispec.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}
	opt.Warn = func(w string) { t.Log("warning:", w) }
	res, err := openState(t, t.TempDir()).Build(t.Context(), opt)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, ev.logs.String())
	}
	return res, ev.started()
}

// TestTwoPlatformsCache exports the cache of a two-platform build
// (registry and local caches hold both platforms' steps, type=inline each
// platform image's own) and builds again on an empty state dir with only
// --cache-from: no step of either platform runs.
func TestTwoPlatformsCache(t *testing.T) {
	base := busyboxIndexBase(t)
	reg, _, _ := strings.Cut(base, "/")
	dir := filepath.Join(t.TempDir(), "cache")
	for _, tc := range []struct {
		name     string
		to, from string
		opt      build.Options
	}{
		{"registry", "type=registry,mode=max,ref=" + reg + "/cache:multi", "type=registry,ref=" + reg + "/cache:multi", build.Options{}},
		{"local", "type=local,mode=max,dest=" + dir, "type=local,src=" + dir, build.Options{}},
		{"inline", "type=inline", "type=registry,ref=" + reg + "/app:inline-multi", build.Options{Tags: []string{reg + "/app:inline-multi"}, Push: true}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			a, ranA := twoPlatformCacheBuild(t, base, []string{tc.to}, nil, tc.opt)
			if len(ranA) == 0 {
				t.Fatal("the first build ran nothing")
			}
			b, ranB := twoPlatformCacheBuild(t, base, nil, []string{tc.from}, build.Options{})
			if len(ranB) != 0 {
				t.Errorf("from the %s cache, on an empty state dir: ran %v, want nothing", tc.name, ranB)
			}
			if tc.name != "inline" && b.Manifest.Digest != a.Manifest.Digest {
				t.Errorf("index from the cache %s, first build %s", b.Manifest.Digest, a.Manifest.Digest)
			}
		})
	}
}
