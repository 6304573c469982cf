package build_test

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/builder-dev/builder/attest"
	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/internal/testutil"
	"github.com/builder-dev/builder/output"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// recordingScanner writes a stand-in for builder-sbom that records each
// run in the returned file and reports the image's /ver as the version of
// a package "ver": what it lists comes from the file tree it was given.
func recordingScanner(t *testing.T) (scanner, runs string) {
	dir := t.TempDir()
	scanner, runs = filepath.Join(dir, attest.ScannerName), filepath.Join(dir, "runs")
	script := fmt.Sprintf(`#!/bin/sh
echo "$*" >> %q
printf '{"spdxVersion":"SPDX-2.3","name":"%%s","packages":[{"name":"ver","versionInfo":"%%s"}]}' "$2" "$(cat "$3/ver")"
`, runs)
	if err := os.WriteFile(scanner, []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return scanner, runs
}

// readIndex reads the index pushed as ref.
func readIndex(t *testing.T, ref string) (v1.ImageIndex, *v1.IndexManifest) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	idx, err := remote.Index(r)
	if err != nil {
		t.Fatalf("reading the pushed index %s: %v", ref, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	return idx, im
}

// attestationLayers returns the statements of attestation manifest att
// (one per layer, in order), checking BuildKit's layout.
func attestationLayers(t *testing.T, idx v1.ImageIndex, att v1.Descriptor) []attest.Statement {
	t.Helper()
	if att.Annotations[attest.AnnotationReferenceType] != "attestation-manifest" {
		t.Fatalf("index entry %s is not an attestation manifest: %v", att.Digest, att.Annotations)
	}
	img, err := idx.Image(att.Digest)
	if err != nil {
		t.Fatal(err)
	}
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	var out []attest.Statement
	for _, l := range m.Layers {
		if l.MediaType != attest.MediaTypeInToto {
			t.Errorf("attestation layer media type %s", l.MediaType)
		}
		layer, err := img.LayerByDigest(l.Digest)
		if err != nil {
			t.Fatal(err)
		}
		rc, err := layer.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := io.ReadAll(rc)
		rc.Close()
		var st attest.Statement
		if err := json.Unmarshal(raw, &st); err != nil {
			t.Fatalf("statement %s: %v", raw, err)
		}
		if l.Annotations[attest.AnnotationPredicateType] != st.PredicateType {
			t.Errorf("layer annotation %s, statement predicate type %s", l.Annotations[attest.AnnotationPredicateType], st.PredicateType)
		}
		out = append(out, st)
	}
	return out
}

// sbomVersion is the version the SBOM statement st gives package pkg.
func sbomVersion(t *testing.T, st attest.Statement, pkg string) string {
	t.Helper()
	raw, _ := json.Marshal(st.Predicate)
	var doc attest.SPDX
	if err := json.Unmarshal(raw, &doc); err != nil || doc.SPDXVersion != "SPDX-2.3" {
		t.Fatalf("SBOM predicate %s: %v", raw, err)
	}
	for _, p := range doc.Packages {
		if p.Name == pkg {
			return p.VersionInfo
		}
	}
	return ""
}

// TestSBOMOnePlatform: --sbom on a single-platform build pushes an index of
// the image and its attestation manifest holding the SPDX statement of the
// image's file tree, as BuildKit lays it out; a build without --sbom runs
// no scanner; a local output gets it as sbom.spdx.json beside its files.
func TestSBOMOnePlatform(t *testing.T) {
	base := busyboxBase(t)
	reg, _, _ := strings.Cut(base, "/")
	st := openState(t, t.TempDir())
	scanner, runs := recordingScanner(t)
	ociDir := filepath.Join(t.TempDir(), "oci")
	oci, err := output.Parse("type=oci,tar=false,dest=" + ociDir)
	if err != nil {
		t.Fatal(err)
	}
	ev, res, err := buildForIndex(t, st, "FROM "+base+"\nRUN echo 1.2.3 > /ver\n", build.Options{
		Tags: []string{reg + "/app:sbom1"}, Push: true, SBOMScanner: scanner, Outputs: []output.Spec{oci},
	})
	if err != nil {
		t.Fatalf("build: %v\n%s", err, ev.logs.String())
	}
	idx, im := readIndex(t, reg+"/app:sbom1")
	if d, _ := idx.Digest(); d.String() != res.Manifest.Digest.String() {
		t.Errorf("result %s, pushed index %s", res.Manifest.Digest, d)
	}
	if len(im.Manifests) != 2 {
		t.Fatalf("index %+v; want the image and its attestation manifest", im)
	}
	if im.Manifests[1].Annotations[attest.AnnotationReferenceDigest] != im.Manifests[0].Digest.String() {
		t.Errorf("attestation manifest refers to %s, image is %s", im.Manifests[1].Annotations[attest.AnnotationReferenceDigest], im.Manifests[0].Digest)
	}
	sts := attestationLayers(t, idx, im.Manifests[1])
	if len(sts) != 1 || sts[0].PredicateType != attest.PredicateSPDX {
		t.Fatalf("statements %+v, want one SPDX statement", sts)
	}
	if v := sbomVersion(t, sts[0], "ver"); v != "1.2.3" {
		t.Errorf("SBOM gives ver %q, want 1.2.3 (from the image's /ver)", v)
	}
	// The OCI layout holds the same index, attestation manifest included.
	layoutIdx, err := layout.ImageIndexFromPath(ociDir)
	if err != nil {
		t.Fatal(err)
	}
	lm, err := layoutIdx.IndexManifest()
	if err != nil || len(lm.Manifests) != 1 || lm.Manifests[0].Digest.String() != res.Manifest.Digest.String() {
		t.Fatalf("OCI layout index.json %+v (%v), want the index %s", lm, err, res.Manifest.Digest)
	}
	ociIdx, err := layoutIdx.ImageIndex(lm.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	if sts := attestationLayers(t, ociIdx, im.Manifests[1]); len(sts) != 1 || sbomVersion(t, sts[0], "ver") != "1.2.3" {
		t.Errorf("OCI layout's SBOM statements %+v", sts)
	}
	if b, _ := os.ReadFile(runs); strings.Count(string(b), "\n") != 1 {
		t.Errorf("scanner ran %q, want once for both outputs", b)
	}
	if b, _ := os.ReadFile(runs); !strings.Contains(string(b), "-name "+reg+"/app:sbom1") {
		t.Errorf("scanner arguments %q, want the image name", b)
	}

	// Without --sbom nothing runs the scanner.
	if err := os.Remove(runs); err != nil {
		t.Fatal(err)
	}
	if ev, _, err := buildForIndex(t, st, "FROM "+base+"\nRUN echo 2 > /ver\n", build.Options{}); err != nil {
		t.Fatalf("build without --sbom: %v\n%s", err, ev.logs.String())
	}
	if _, err := os.Stat(runs); err == nil {
		t.Error("a build without --sbom ran the scanner")
	}

	// A local output of one platform gets the SBOM at its top, beside the
	// files, about them (TestAttestationFilesLocalTar has the details).
	localDir := filepath.Join(t.TempDir(), "out")
	local, err := output.Parse("type=local,dest=" + localDir)
	if err != nil {
		t.Fatal(err)
	}
	if ev, _, err := buildForIndex(t, st, "FROM "+base+"\nRUN echo 3 > /ver\n", build.Options{Outputs: []output.Spec{local}, SBOMScanner: scanner}); err != nil {
		t.Fatalf("local output with --sbom: %v\n%s", err, ev.logs.String())
	}
	raw, err := os.ReadFile(filepath.Join(localDir, "sbom.spdx.json"))
	if err != nil {
		t.Fatal(err)
	}
	var sbom attest.Statement
	if err := json.Unmarshal(raw, &sbom); err != nil {
		t.Fatal(err)
	}
	if v := sbomVersion(t, sbom, "ver"); v != "3" || !slices.ContainsFunc(sbom.Subject, func(s attest.Subject) bool { return s.Name == "ver" }) {
		t.Errorf("local output's sbom.spdx.json gives ver %q, subjects %v; want 3, about ver", v, sbom.Subject)
	}
}

// TestSBOMTwoPlatformsWithProvenance: each platform image of the index gets
// one attestation manifest with its SBOM (of its own file tree) and then
// its provenance, BuildKit's order.
func TestSBOMTwoPlatformsWithProvenance(t *testing.T) {
	base := busyboxIndexBase(t)
	reg, _, _ := strings.Cut(base, "/")
	st := openState(t, t.TempDir())
	scanner, _ := recordingScanner(t)
	ev, _, err := buildForIndex(t, st, "FROM "+base+"\nRUN uname -m > /ver\n", build.Options{
		Tags: []string{reg + "/app:sbom2"}, Push: true, SBOMScanner: scanner,
		Platforms:  []ocispec.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}},
		Provenance: build.Provenance{Mode: attest.ModeMin},
	})
	if err != nil {
		t.Fatalf("build: %v\n%s", err, ev.logs.String())
	}
	idx, im := readIndex(t, reg+"/app:sbom2")
	if len(im.Manifests) != 4 {
		t.Fatalf("index %+v; want 2 images and 2 attestation manifests", im)
	}
	for i, want := range []string{"x86_64", "aarch64"} {
		att := im.Manifests[2+i]
		if att.Annotations[attest.AnnotationReferenceDigest] != im.Manifests[i].Digest.String() {
			t.Errorf("attestation manifest %d refers to %s, want %s", i, att.Annotations[attest.AnnotationReferenceDigest], im.Manifests[i].Digest)
		}
		sts := attestationLayers(t, idx, att)
		if len(sts) != 2 || sts[0].PredicateType != attest.PredicateSPDX || sts[1].PredicateType != attest.PredicateSLSA1 {
			t.Fatalf("platform %d statements %+v, want SPDX then SLSA provenance", i, sts)
		}
		if v := sbomVersion(t, sts[0], "ver"); v != want {
			t.Errorf("platform %d SBOM gives %q, want %q (its own file tree)", i, v, want)
		}
	}
}

// buildForIndex builds dockerfile on st with opts and an empty context;
// its result may be an index (runBuild reads an image's files).
func buildForIndex(t *testing.T, st *build.State, dockerfile string, opts build.Options) (*events, *build.Result, error) {
	t.Helper()
	ev := newEvents()
	opts.ContextDir, opts.Dockerfile, opts.DockerfileName, opts.Progress = writeContext(t, nil), []byte(dockerfile), "Dockerfile", ev
	res, err := st.Build(t.Context(), opts)
	return ev, res, err
}

// TestSBOMDebianCurl is issue 13's proof with the real scanner: after
// apt-get install curl on a Debian base, the SBOM lists curl with the
// version dpkg installed. It needs BUILDER_SBOM (a builder-sbom binary:
// make build-sbom) and testutil.DebianEnv, so CI (which does not compile
// syft) skips it; cmd/builder-sbom's own tests cover the scanner there.
func TestSBOMDebianCurl(t *testing.T) {
	scanner := os.Getenv("BUILDER_SBOM")
	if scanner == "" {
		t.Skip("set BUILDER_SBOM to a builder-sbom binary (make build-sbom)")
	}
	img := testutil.DebianImage(t)
	testutil.RequiresRoot(t)
	reg := testutil.InProcessRegistry(t)
	base := reg + "/debian:" + testutil.DebianSuite
	testutil.PushImage(t, img, base)
	st := openState(t, t.TempDir())
	df := "FROM " + base + `
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update -q && apt-get install -y -q --no-install-recommends curl && \
    dpkg-query -W -f '${Version}' curl > /curl-version
`
	ev, _, err := buildForIndex(t, st, df, build.Options{Tags: []string{reg + "/app:curl"}, Push: true, SBOMScanner: scanner})
	if err != nil {
		t.Fatalf("build: %v\n%s", err, ev.logs.String())
	}
	idx, im := readIndex(t, reg+"/app:curl")
	if len(im.Manifests) != 2 {
		t.Fatalf("index %+v; want the image and its attestation manifest", im)
	}
	image, err := idx.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := image.Layers()
	if err != nil {
		t.Fatal(err)
	}
	want := strings.TrimSpace(imageFiles(t, layers)["curl-version"].content)
	sts := attestationLayers(t, idx, im.Manifests[1])
	if len(sts) != 1 || sts[0].PredicateType != attest.PredicateSPDX {
		t.Fatalf("statements %+v, want one SPDX statement", sts)
	}
	if got := sbomVersion(t, sts[0], "curl"); want == "" || got != want {
		t.Errorf("SBOM lists curl at %q, dpkg installed %q", got, want)
	}
	if got := sbomVersion(t, sts[0], "libc6"); got == "" {
		t.Error("SBOM lacks the base's libc6")
	}
}
