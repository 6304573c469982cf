package attest

import (
	"encoding/json"
	"os"
	"reflect"
	"testing"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// readJSON decodes testdata/buildkit/name, written by BuildKit v0.34.2 (see
// testdata/buildkit/README.md), and returns its bytes too.
func readJSON(t *testing.T, name string, v any) []byte {
	t.Helper()
	b, err := os.ReadFile("testdata/buildkit/" + name)
	if err != nil {
		t.Fatal(err)
	}
	if v != nil {
		if err := json.Unmarshal(b, v); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
	}
	return b
}

// TestIndexAdditionsMatchBuildKit rebuilds the attestation manifest
// BuildKit made for the amd64 image of a two-platform build, from the
// image's index entry and the statement BuildKit stored, and expects the
// very same bytes and index entry.
func TestIndexAdditionsMatchBuildKit(t *testing.T) {
	var idx ocispec.Index
	readJSON(t, "index.json", &idx)
	wantRaw := readJSON(t, "attestation-manifest.json", nil)
	layer := readJSON(t, "attestation-layer.json", nil)

	var images []ocispec.Descriptor
	var wantEntries []ocispec.Descriptor
	for _, d := range idx.Manifests {
		if d.Annotations[AnnotationReferenceType] == "" {
			images = append(images, d)
		} else {
			wantEntries = append(wantEntries, d)
		}
	}
	if len(images) != 2 || len(wantEntries) != 2 {
		t.Fatalf("testdata index: %d images, %d attestation manifests; want 2 and 2", len(images), len(wantEntries))
	}
	var st struct {
		Type          string          `json:"_type"`
		PredicateType string          `json:"predicateType"`
		Subject       []Subject       `json:"subject"`
		Predicate     json.RawMessage `json:"predicate"`
	}
	if err := json.Unmarshal(layer, &st); err != nil {
		t.Fatal(err)
	}
	statement := Statement{Type: st.Type, PredicateType: st.PredicateType, Subject: st.Subject, Predicate: st.Predicate}

	got, err := IndexAdditions([]Image{
		{Descriptor: images[0], Statements: []Statement{statement}},
		{Descriptor: images[1]}, // no statements: no manifest
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 {
		t.Fatalf("IndexAdditions gave %d manifests, want 1", len(got))
	}
	m := got[0]
	if string(m.Raw) != string(wantRaw) {
		t.Errorf("attestation manifest differs from BuildKit's:\n got %s\nwant %s", m.Raw, wantRaw)
	}
	if !reflect.DeepEqual(m.Descriptor, wantEntries[0]) {
		t.Errorf("index entry = %+v\nwant %+v", m.Descriptor, wantEntries[0])
	}
	if b := m.Blobs[digest.FromBytes(layer)]; string(b) != string(layer) {
		t.Errorf("the statement layer is not among the blobs with BuildKit's bytes")
	}
	var man ocispec.Manifest
	if err := json.Unmarshal(m.Raw, &man); err != nil {
		t.Fatal(err)
	}
	for _, d := range append([]ocispec.Descriptor{man.Config}, man.Layers...) {
		if b, ok := m.Blobs[d.Digest]; !ok || digest.FromBytes(b) != d.Digest || int64(len(b)) != d.Size {
			t.Errorf("blob %s (%s) missing or wrong", d.Digest, d.MediaType)
		}
	}
}
