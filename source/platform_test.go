package source_test

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/builder-dev/builder/cache/content"
	"github.com/builder-dev/builder/internal/testutil"
	"github.com/builder-dev/builder/platform"
	"github.com/builder-dev/builder/source"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestResolveIndexPerPlatform resolves one multi-platform base image for
// each platform, variant spelled or not, and for one it lacks.
func TestResolveIndexPerPlatform(t *testing.T) {
	ref := testutil.InProcessRegistry(t) + "/busybox:multi"
	testutil.PushIndex(t, testutil.BusyboxIndex(t), ref)
	store, err := content.NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	reg := &source.Registries{Content: store}

	for _, tc := range []struct{ want, arch, variant string }{
		{"linux/amd64", "amd64", ""},
		{"linux/arm64", "arm64", "v8"},
		{"arm64/v8", "arm64", "v8"},
	} {
		p, err := platform.Parse(tc.want)
		if err != nil {
			t.Fatal(err)
		}
		res, err := reg.Resolve(t.Context(), ref, p)
		if err != nil {
			t.Fatalf("Resolve(%s, %s): %v", ref, tc.want, err)
		}
		var cfg ocispec.Image
		if err := json.Unmarshal(res.Config, &cfg); err != nil {
			t.Fatal(err)
		}
		if cfg.Architecture != tc.arch || cfg.Variant != tc.variant {
			t.Errorf("Resolve(%s) gave the config of %s/%s", tc.want, cfg.Architecture, cfg.Variant)
		}
	}

	p, _ := platform.Parse("linux/s390x")
	_, err = reg.Resolve(t.Context(), ref, p)
	if err == nil || !strings.Contains(err.Error(), "(the image has: linux/amd64, linux/arm64)") {
		t.Errorf("Resolve(%s, linux/s390x) = %v, want an error listing linux/amd64 and linux/arm64", ref, err)
	}
}
