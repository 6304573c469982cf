package build_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/builder-dev/builder/attest"
	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/output"
	"github.com/builder-dev/builder/platform"
)

// TestProvenanceOnePlatform: --provenance on a single-platform build makes
// an index of the image and its attestation manifest, as BuildKit does; a
// local output still gets the tree itself (no platform subdirectory), and
// a docker archive, which cannot hold an index, is refused before any step.
func TestProvenanceOnePlatform(t *testing.T) {
	base := busyboxBase(t)
	reg, _, _ := strings.Cut(base, "/")
	st := openState(t, t.TempDir())
	localDir := filepath.Join(t.TempDir(), "out")
	local, err := output.Parse("type=local,dest=" + localDir)
	if err != nil {
		t.Fatal(err)
	}
	ev, res, err := runBuildIndex(t, st, "FROM "+base+"\nRUN echo hi > /hi\n", build.Options{
		Tags: []string{reg + "/app:prov1"}, Push: true, Outputs: []output.Spec{local},
		Provenance: build.Provenance{Mode: attest.ModeMin},
	})
	if err != nil {
		t.Fatalf("build: %v\n%s", err, ev.logs.String())
	}
	idx := pushedIndex(t, reg+"/app:prov1", res.Manifest.Digest)
	im, err := idx.IndexManifest()
	if err != nil || len(im.Manifests) != 2 {
		t.Fatalf("index: %v, %+v; want the image and its attestation manifest", err, im)
	}
	host := platform.Host()
	if p := im.Manifests[0].Platform; p == nil || p.OS != host.OS || p.Architecture != host.Architecture {
		t.Errorf("image descriptor platform %+v, want %s", p, platform.Format(host))
	}
	att := im.Manifests[1]
	if att.Annotations[attest.AnnotationReferenceType] != "attestation-manifest" || att.Annotations[attest.AnnotationReferenceDigest] != im.Manifests[0].Digest.String() {
		t.Errorf("attestation manifest annotations %v, want a reference to %s", att.Annotations, im.Manifests[0].Digest)
	}
	if b, err := os.ReadFile(filepath.Join(localDir, "hi")); err != nil || string(b) != "hi\n" {
		t.Errorf("local output hi: %q %v", b, err)
	}
	// As BuildKit, the provenance goes beside the files, about them.
	raw, err := os.ReadFile(filepath.Join(localDir, "provenance.json"))
	if err != nil {
		t.Fatal(err)
	}
	var prov attest.Statement
	if err := json.Unmarshal(raw, &prov); err != nil || prov.PredicateType != attest.PredicateSLSA1 {
		t.Fatalf("local output's provenance.json: %v, predicate %q", err, prov.PredicateType)
	}
	if want := regularFileSubjects(t, localDir); !reflect.DeepEqual(prov.Subject, want) {
		t.Errorf("provenance subjects %v, want the output's regular files %v", prov.Subject, want)
	}

	docker, err := output.Parse("type=docker,dest=" + filepath.Join(t.TempDir(), "d.tar"))
	if err != nil {
		t.Fatal(err)
	}
	ev, _, err = runBuildIndex(t, st, "FROM "+base+"\nRUN echo other > /o\n", build.Options{
		Outputs: []output.Spec{docker}, Provenance: build.Provenance{Mode: attest.ModeMin},
	})
	if err == nil || !strings.Contains(err.Error(), "docker exporter does not support exporting manifest lists") {
		t.Errorf("docker output with provenance: %v, want BuildKit's refusal", err)
	}
	if len(ev.ran()) != 0 {
		t.Errorf("steps ran before the refusal: %v", ev.ran())
	}
}

// runBuildIndex builds dockerfile on st with opts and an empty context,
// for a build whose result is an index (runBuild reads an image's files).
func runBuildIndex(t *testing.T, st *build.State, dockerfile string, opts build.Options) (*events, *build.Result, error) {
	t.Helper()
	ev := newEvents()
	opts.ContextDir, opts.Dockerfile, opts.DockerfileName, opts.Progress = writeContext(t, nil), []byte(dockerfile), "Dockerfile", ev
	res, err := st.Build(t.Context(), opts)
	return ev, res, err
}
