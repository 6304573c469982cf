package build_test

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/builder-dev/builder/attest"
	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/internal/testutil"
	"github.com/builder-dev/builder/output"
	"github.com/builder-dev/builder/platform"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
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

// TestTwoPlatforms builds linux/amd64 and linux/arm64 in one solve, pushes
// the index (OCI, and a Docker manifest list) and writes local trees, then
// reads them back: each platform's config and `uname -m`, the
// build-platform stage's common step run once.
func TestTwoPlatforms(t *testing.T) {
	base := busyboxIndexBase(t)
	reg, _, _ := strings.Cut(base, "/")
	st := openState(t, t.TempDir())
	localDir := filepath.Join(t.TempDir(), "out")
	ociDir := filepath.Join(t.TempDir(), "oci")
	var outs []output.Spec
	for _, o := range []string{
		"type=image,name=" + reg + "/app:multi,push=true",
		"type=registry,name=" + reg + "/app:docker,oci-mediatypes=false",
		"type=local,dest=" + localDir,
		"type=oci,tar=false,dest=" + ociDir,
		"type=tar,dest=" + ociDir + ".tar",
	} {
		out, err := output.Parse(o)
		if err != nil {
			t.Fatal(err)
		}
		outs = append(outs, out)
	}
	df := `FROM --platform=$BUILDPLATFORM {{BASE}} AS b
RUN echo shared > /s
ARG TARGETARCH
RUN echo $TARGETARCH > /arch
FROM {{BASE}}
COPY --from=b /s /arch /
RUN uname -m > /m
`
	amd64 := ocispec.Platform{OS: "linux", Architecture: "amd64"}
	arm64 := ocispec.Platform{OS: "linux", Architecture: "arm64"}
	ev := newEvents()
	res, err := st.Build(t.Context(), build.Options{
		ContextDir: writeContext(t, nil), Dockerfile: []byte(strings.ReplaceAll(df, "{{BASE}}", base)), DockerfileName: "Dockerfile",
		Progress: ev, Outputs: outs, Platforms: []ocispec.Platform{amd64, arm64},
	})
	if err != nil {
		t.Fatalf("build: %v\n%s", err, ev.logs.String())
	}
	shared, unames := 0, 0
	for _, n := range ev.ran() {
		if strings.Contains(n, "RUN echo shared") {
			shared++
		}
		if strings.Contains(n, "RUN uname -m") {
			unames++
		}
	}
	if shared != 1 || unames != 2 {
		t.Errorf("the build-platform step ran %d times, want once; the target stage's RUN %d, want twice: %v", shared, unames, ev.ran())
	}
	want := map[string]string{"amd64": "x86_64", "arm64": "aarch64"}
	for _, tc := range []struct {
		tag       string
		indexType types.MediaType
	}{{"multi", types.OCIImageIndex}, {"docker", types.DockerManifestList}} {
		ref := reg + "/app:" + tc.tag
		idx, im := readIndex(t, ref)
		if im.MediaType != tc.indexType || len(im.Manifests) != 2 {
			t.Fatalf("%s: index %s of %d manifests, want %s of 2", ref, im.MediaType, len(im.Manifests), tc.indexType)
		}
		if tc.tag == "multi" {
			if d, _ := idx.Digest(); d.String() != res.Manifest.Digest.String() {
				t.Errorf("result digest %s, pushed index %s", res.Manifest.Digest, d)
			}
			if raw := skopeoRaw(t, ref); raw != nil && digest.FromBytes(raw) != res.Manifest.Digest {
				t.Errorf("skopeo inspect --raw %s: digest %s, want %s:\n%s", ref, digest.FromBytes(raw), res.Manifest.Digest, raw)
			}
		}
		for _, d := range im.Manifests {
			img, err := idx.Image(d.Digest)
			if err != nil {
				t.Fatal(err)
			}
			cf, err := img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if d.Platform == nil || d.Platform.Architecture != cf.Architecture || cf.OS != "linux" {
				t.Errorf("%s: descriptor platform %+v, config %s/%s", ref, d.Platform, cf.OS, cf.Architecture)
			}
			if cf.Architecture == "arm64" && cf.Variant != "v8" {
				t.Errorf("%s: arm64 config variant %q, want v8", ref, cf.Variant)
			}
			layers, err := img.Layers()
			if err != nil {
				t.Fatal(err)
			}
			files := imageFiles(t, layers)
			checkContent(t, files, "m", want[cf.Architecture])
			checkContent(t, files, "arch", cf.Architecture)
			checkContent(t, files, "s", "shared")
		}
	}
	lp, err := layout.FromPath(ociDir)
	if err != nil {
		t.Fatal(err)
	}
	top, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	tm, err := top.IndexManifest()
	if err != nil || len(tm.Manifests) != 1 || tm.Manifests[0].MediaType != types.OCIImageIndex {
		t.Fatalf("oci output index.json: %v %+v, want one image index", err, tm)
	}
	inner, err := top.ImageIndex(tm.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	if im, err := inner.IndexManifest(); err != nil || len(im.Manifests) != 2 {
		t.Errorf("oci output's image index: %v %+v, want 2 manifests", err, im)
	}
	f, err := os.Open(ociDir + ".tar")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	inTar := map[string]string{}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err != nil {
			break
		}
		b, _ := io.ReadAll(tr)
		inTar[hdr.Name] = strings.TrimSpace(string(b))
	}
	for arch, m := range want {
		b, err := os.ReadFile(filepath.Join(localDir, "linux_"+arch, "m"))
		if err != nil || strings.TrimSpace(string(b)) != m {
			t.Errorf("local output linux_%s/m: %q %v, want %s", arch, b, err, m)
		}
		if got := inTar["linux_"+arch+"/m"]; got != m {
			t.Errorf("tar output linux_%s/m: %q, want %s", arch, got, m)
		}
	}
}

// TestTwoPlatformsDockerRefused: a docker archive holds one platform, so a
// build of several refuses it before any step, as BuildKit does.
func TestTwoPlatformsDockerRefused(t *testing.T) {
	testutil.RequiresRoot(t)
	st := openState(t, t.TempDir())
	out, err := output.Parse("type=docker,dest=" + filepath.Join(t.TempDir(), "d.tar"))
	if err != nil {
		t.Fatal(err)
	}
	_, ev, _, err := runBuild(t, st, "", writeContext(t, nil), "FROM scratch\nCOPY . /\n", build.Options{
		Outputs: []output.Spec{out}, Platforms: []ocispec.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}})
	if err == nil || !strings.Contains(err.Error(), "docker exporter does not support exporting manifest lists") {
		t.Fatalf("docker output of two platforms: %v", err)
	}
	if len(ev.ran()) != 0 {
		t.Errorf("steps ran: %v", ev.ran())
	}
}

// TestTwoPlatformsProvenance: --provenance=mode=max attaches one
// attestation manifest per platform image to the pushed index, as BuildKit
// lays them out, with the base image as material and no secret value.
func TestTwoPlatformsProvenance(t *testing.T) {
	base := busyboxIndexBase(t)
	reg, _, _ := strings.Cut(base, "/")
	st := openState(t, t.TempDir())
	secret := filepath.Join(t.TempDir(), "tok")
	if err := os.WriteFile(secret, []byte("s3cr3t-value"), 0o600); err != nil {
		t.Fatal(err)
	}
	ev := newEvents()
	res, err := st.Build(t.Context(), build.Options{
		ContextDir: writeContext(t, nil), Dockerfile: []byte("FROM " + base + "\nRUN --mount=type=secret,id=tok uname -m > /m\n"), DockerfileName: "Dockerfile", Progress: ev,
		Tags: []string{reg + "/app:prov"}, Push: true, BuildArgs: map[string]string{"FOO": "bar"},
		Secrets:    map[string]build.Secret{"tok": {File: secret}},
		Platforms:  []ocispec.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}},
		Provenance: build.Provenance{Mode: attest.ModeMax},
	})
	if err != nil {
		t.Fatalf("build: %v\n%s", err, ev.logs.String())
	}
	idx := pushedIndex(t, reg+"/app:prov", res.Manifest.Digest)
	im, err := idx.IndexManifest()
	if err != nil || len(im.Manifests) != 4 {
		t.Fatalf("index: %v, %d manifests, want 2 images and 2 attestation manifests", err, len(im.Manifests))
	}
	for i, d := range im.Manifests[2:] {
		if d.Annotations[attest.AnnotationReferenceType] != "attestation-manifest" || d.Annotations[attest.AnnotationReferenceDigest] != im.Manifests[i].Digest.String() {
			t.Errorf("attestation manifest %d annotations %v, want a reference to %s", i, d.Annotations, im.Manifests[i].Digest)
		}
		img, err := idx.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		layers, err := img.Layers()
		if err != nil || len(layers) != 1 {
			t.Fatalf("attestation layers: %v %d", err, len(layers))
		}
		rc, err := layers[0].Compressed()
		if err != nil {
			t.Fatal(err)
		}
		stmt, _ := io.ReadAll(rc)
		rc.Close()
		var s attest.Statement
		if err := json.Unmarshal(stmt, &s); err != nil || s.PredicateType != attest.PredicateSLSA1 {
			t.Fatalf("statement %s: %v", stmt, err)
		}
		for _, want := range []string{base, "build-arg:FOO", `"tok"`, "uname -m"} {
			if !strings.Contains(string(stmt), want) {
				t.Errorf("provenance of %s lacks %q", im.Manifests[i].Platform, want)
			}
		}
		if strings.Contains(string(stmt), "s3cr3t-value") || strings.Contains(string(stmt), secret) {
			t.Errorf("provenance holds the secret or its source path: %s", stmt)
		}
	}
}

// skopeoRaw is what `skopeo inspect --raw` reads of the manifest ref (a
// loopback registry, over plain HTTP): a second reader of what builder
// pushed, besides go-containerregistry. Without skopeo it returns nil (a
// failure in CI, where `make deps` installs it).
func skopeoRaw(t *testing.T, ref string) []byte {
	t.Helper()
	bin, err := exec.LookPath("skopeo")
	if err != nil {
		if os.Getenv("CI") != "" {
			t.Errorf("skopeo not found (apt-get install skopeo); CI is set, so this is not a skip")
		} else {
			t.Logf("skopeo not found: not checking the index with it (apt-get install skopeo)")
		}
		return nil
	}
	// An auth file of its own: as an unprivileged user without
	// XDG_RUNTIME_DIR, skopeo otherwise reads /run/containers/UID/auth.json
	// and fails where root's podman made /run/containers 0700.
	auth := filepath.Join(t.TempDir(), "auth.json")
	if err := os.WriteFile(auth, []byte("{}"), 0o600); err != nil {
		t.Fatal(err)
	}
	var stderr bytes.Buffer
	cmd := exec.CommandContext(t.Context(), bin, "inspect", "--raw", "--tls-verify=false", "--authfile", auth, "docker://"+ref)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Errorf("skopeo inspect --raw %s: %v\n%s", ref, err, stderr.String())
		return nil
	}
	return out
}

// pushedIndex reads the index ref from its registry and fails unless its
// digest is want.
func pushedIndex(t *testing.T, ref string, want digest.Digest) v1.ImageIndex {
	t.Helper()
	idx, _ := readIndex(t, ref)
	if d, _ := idx.Digest(); d.String() != want.String() {
		t.Errorf("index %s has digest %s, want %s", ref, d, want)
	}
	return idx
}
