package build_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/internal/testutil"
	"github.com/builder-dev/builder/output"
	"github.com/builder-dev/builder/platform"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// busyboxIndexBase pushes testutil.BusyboxIndex (amd64 + arm64) to a
// loopback registry and returns its reference; it skips without QEMU.
func busyboxIndexBase(t *testing.T) string {
	t.Helper()
	testutil.RequiresRoot(t)
	if err := platform.CheckRunnable(ocispec.Platform{OS: "linux", Architecture: "arm64"}); err != nil {
		testutil.Missing(t, err.Error())
	}
	reg := testutil.InProcessRegistry(t)
	base := reg + "/busybox:multi"
	testutil.PushIndex(t, testutil.BusyboxIndex(t), base)
	return base
}

// TestPlatformArm64: --platform linux/arm64 resolves the arm64 image of an
// index, runs RUN under emulation and records the platform in the config.
func TestPlatformArm64(t *testing.T) {
	base := busyboxIndexBase(t)
	st := openState(t, t.TempDir())
	dest := filepath.Join(t.TempDir(), "oci")
	out, err := output.Parse("type=oci,tar=false,dest=" + dest)
	if err != nil {
		t.Fatal(err)
	}
	df := "FROM {{BASE}}\nARG TARGETARCH\nRUN uname -m > /m && echo $TARGETARCH > /t\n"
	_, ev, _, err := runBuild(t, st, base, writeContext(t, nil), df, build.Options{
		Platforms: []ocispec.Platform{{OS: "linux", Architecture: "arm64"}}, Outputs: []output.Spec{out},
	})
	if err != nil {
		t.Fatalf("build: %v\n%s", err, ev.logs.String())
	}
	idx, err := layout.ImageIndexFromPath(dest)
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil || len(im.Manifests) != 1 {
		t.Fatalf("oci layout index: %v %+v", err, im)
	}
	img, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cf.OS != "linux" || cf.Architecture != "arm64" || cf.Variant != "v8" {
		t.Errorf("config platform %s/%s/%s, want linux/arm64/v8", cf.OS, cf.Architecture, cf.Variant)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	files := imageFiles(t, layers)
	checkContent(t, files, "m", "aarch64")
	checkContent(t, files, "t", "arm64")
}

// TestPlatformNoEmulator: a platform no emulator runs fails before the
// first step, naming the step and the platform (the hint for a known but
// unregistered emulator is platform.TestCheckRunnable*'s).
func TestPlatformNoEmulator(t *testing.T) {
	base := busyboxBase(t)
	st := openState(t, t.TempDir())
	mips64 := ocispec.Platform{OS: "linux", Architecture: "mips64"}
	// The registry has an amd64 image only: the build-platform stage takes
	// it, and the mips64 stage copies from it onto scratch.
	_, ev, _, err := runBuild(t, st, base, writeContext(t, nil), "FROM --platform=$BUILDPLATFORM {{BASE}} AS b\nRUN true\nFROM scratch\nCOPY --from=b /bin/busybox /\nRUN [\"/busybox\", \"true\"]\n",
		build.Options{Platforms: []ocispec.Platform{mips64}})
	if err == nil {
		t.Fatalf("build for mips64 without an emulator succeeded\n%s", ev.logs.String())
	}
	for _, want := range []string{"linux/mips64", "no QEMU user emulator", `RUN ["/busybox", "true"]`} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if len(ev.ran()) != 0 {
		t.Errorf("steps ran before the platform check: %v", ev.ran())
	}
}
