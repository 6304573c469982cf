package attest

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/builder-dev/builder/internal/testutil"
)

// fakeScanner writes a shell script standing in for builder-sbom.
func fakeScanner(t *testing.T, script string) string {
	p := filepath.Join(t.TempDir(), ScannerName)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+script), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestSBOMStatement(t *testing.T) {
	doc := `{"spdxVersion":"SPDX-2.3","name":"x","packages":[{"name":"curl","versionInfo":"7.88.1-10"}]}`
	st, err := SBOM(t.Context(), fakeScanner(t, "echo '"+doc+"'"), t.TempDir(), "app")
	if err != nil {
		t.Fatal(err)
	}
	if st.PredicateType != PredicateSPDX || st.Type != statementType {
		t.Errorf("statement %s / %s", st.Type, st.PredicateType)
	}
	b, _ := json.Marshal(st)
	if !strings.Contains(string(b), `"predicate":{"spdxVersion":"SPDX-2.3"`) {
		t.Errorf("the SPDX document is not the predicate: %s", b)
	}

	for _, tc := range []struct{ script, want string }{
		{"echo 'cannot read /x' >&2; exit 1", "cannot read /x"},
		{"echo not json", "no SPDX JSON"},
		{`echo '{"spdxVersion":"SPDX-3.0"}'`, "want an SPDX 2 document"},
	} {
		_, err := SBOM(t.Context(), fakeScanner(t, tc.script), t.TempDir(), "app")
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("scanner %q: error %v, want %q", tc.script, err, tc.want)
		}
	}
}

// scannerForTest is the real builder-sbom from BUILDER_SBOM (make unit sets
// it once make build-sbom has built it); without it the test skips, also in
// CI, where compiling syft would take most of the time budget.
func scannerForTest(t *testing.T) string {
	p := os.Getenv("BUILDER_SBOM")
	if p == "" {
		t.Skip("set BUILDER_SBOM to a builder-sbom binary (make build-sbom; make sbom-test runs this)")
	}
	return p
}

// TestSBOMDebian scans a debootstrapped Debian and expects every package
// dpkg lists, with dpkg's version.
func TestSBOMDebian(t *testing.T) {
	scanner := scannerForTest(t)
	img := testutil.DebianImage(t)
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("debian image layers: %d, %v", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	root := t.TempDir()
	untar := exec.CommandContext(t.Context(), "tar", "-x", "--no-same-owner", "-C", root)
	untar.Stdin = rc
	if out, err := untar.CombinedOutput(); err != nil {
		t.Fatalf("unpacking debian: %v\n%s", err, out)
	}
	out, err := exec.Command("dpkg-query", "--admindir="+filepath.Join(root, "var/lib/dpkg"), "-W", "-f", "${Package} ${Version}\n").Output()
	if err != nil {
		t.Fatalf("dpkg-query: %v", err)
	}
	want := map[string]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		name, version, _ := strings.Cut(line, " ")
		want[name] = version
	}

	st, err := SBOM(t.Context(), scanner, root, "debian:bookworm")
	if err != nil {
		t.Fatal(err)
	}
	var doc SPDX
	if err := json.Unmarshal(st.Predicate.(json.RawMessage), &doc); err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, p := range doc.Packages {
		if strings.HasPrefix(p.PURL(), "pkg:deb/debian/") {
			got[p.Name] = p.VersionInfo
		}
	}
	for name, version := range want {
		if got[name] != version {
			t.Errorf("SBOM has %s at %q, dpkg says %q", name, got[name], version)
		}
	}
	if len(want) < 50 || len(got) != len(want) {
		t.Errorf("SBOM lists %d Debian packages, dpkg %d", len(got), len(want))
	}
}
