package attest

import (
	"bytes"
	"encoding/json"
	"os"
	"testing"
)

// TestFileBytesMatchBuildKit: a statement written beside a local output's
// files is byte for byte what BuildKit v0.34.2 wrote for the same SBOM
// (testdata/buildkit/local-sbom.spdx.json: buildctl build with
// attest:sbom=generator=<a scanner printing this document>, -o type=local,
// of a tree holding a.txt = "hi\n").
func TestFileBytesMatchBuildKit(t *testing.T) {
	want, err := os.ReadFile("testdata/buildkit/local-sbom.spdx.json")
	if err != nil {
		t.Fatal(err)
	}
	var doc struct {
		Predicate json.RawMessage `json:"predicate"`
	}
	if err := json.Unmarshal(want, &doc); err != nil {
		t.Fatal(err)
	}
	st := Statement{Type: statementType, PredicateType: PredicateSPDX, Subject: []Subject{}, Predicate: doc.Predicate}
	got, err := FileBytes(st, []Subject{{Name: "a.txt", Digest: map[string]string{"sha256": "98ea6e4f216f2fb4b69fff9b3a44842c38686ca685f3f55dc48c5d3fb1107be4"}}})
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("FileBytes:\n%s\nBuildKit wrote:\n%s", got, want)
	}
	if name, err := FileName(st.PredicateType); err != nil || name != "sbom.spdx.json" {
		t.Errorf("FileName(SPDX) = %q, %v", name, err)
	}
	for _, pt := range []string{PredicateSLSA02, PredicateSLSA1} {
		if name, err := FileName(pt); err != nil || name != "provenance.json" {
			t.Errorf("FileName(%s) = %q, %v", pt, name, err)
		}
	}
	if _, err := FileName("https://example.com/other"); err == nil {
		t.Error("FileName of an unknown predicate type: no error")
	}
}
