package build_test

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/builder-dev/builder/attest"
	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/output"
	"github.com/builder-dev/builder/solver"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// attestationFiles are the names BuildKit gives a local or tar output's
// attestations beside its files.
var attestationFiles = []string{"sbom.spdx.json", "provenance.json"}

// TestAttestationFilesLocalTar: with --sbom and --provenance, a local and
// a tar output of two platforms get, in each platform's directory,
// sbom.spdx.json and provenance.json beside the files, as BuildKit writes
// them: the whole in-toto statement (mode 0600) whose subjects are the
// tree's regular files (a hard link too, symlinks and directories not)
// with their SHA-256; each platform's SBOM is of its own tree, and the tar
// holds the same statements as the directory.
func TestAttestationFilesLocalTar(t *testing.T) {
	base := busyboxIndexBase(t)
	st := openState(t, t.TempDir())
	scanner, _ := recordingScanner(t)
	localDir, tarFile := filepath.Join(t.TempDir(), "out"), filepath.Join(t.TempDir(), "out.tar")
	local, err := output.Parse("type=local,dest=" + localDir)
	if err != nil {
		t.Fatal(err)
	}
	tarOut, err := output.Parse("type=tar,dest=" + tarFile)
	if err != nil {
		t.Fatal(err)
	}
	df := "FROM " + base + "\nRUN uname -m > /ver && ln /ver /ver-link && ln -s ver /ver-sym\n"
	ev, numbers := newEvents(), &stepNumbers{byName: map[string]map[int]bool{}}
	_, err = st.Build(t.Context(), build.Options{
		ContextDir: writeContext(t, nil), Dockerfile: []byte(df), DockerfileName: "Dockerfile", Progress: teeProgress{ev, numbers},
		Outputs: []output.Spec{local, tarOut}, SBOMScanner: scanner,
		Platforms:  []ocispec.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}},
		Provenance: build.Provenance{Mode: attest.ModeMin},
	})
	if err != nil {
		t.Fatalf("build: %v\n%s", err, ev.logs.String())
	}
	// The export is a step of its own number, after both platforms' steps
	// (it once took the number of the second platform's RUN).
	for ex := range numbers.byName["exporting"] {
		for name, ns := range numbers.byName {
			if name != "exporting" && ns[ex] {
				t.Errorf("export step #%d is also %q", ex, name)
			}
		}
	}
	tarFiles := readTarFiles(t, tarFile)
	for dir, arch := range map[string]string{"linux_amd64": "x86_64", "linux_arm64": "aarch64"} {
		root := filepath.Join(localDir, dir)
		want := regularFileSubjects(t, root)
		for _, n := range []string{"ver", "ver-link"} {
			if !slices.ContainsFunc(want, func(s attest.Subject) bool { return s.Name == n }) {
				t.Fatalf("%s: no regular file %s in the output", dir, n)
			}
		}
		sum := sha256.Sum256([]byte(arch + "\n"))
		for _, name := range attestationFiles {
			p := filepath.Join(root, name)
			fi, err := os.Stat(p)
			if err != nil {
				t.Fatalf("%s: %v", dir, err)
			}
			if fi.Mode().Perm() != 0o600 {
				t.Errorf("%s/%s mode %v, want 0600 as BuildKit", dir, name, fi.Mode().Perm())
			}
			raw, _ := os.ReadFile(p)
			var stmt attest.Statement
			if err := json.Unmarshal(raw, &stmt); err != nil {
				t.Fatalf("%s/%s: %v", dir, name, err)
			}
			if stmt.Type != "https://in-toto.io/Statement/v1" {
				t.Errorf("%s/%s _type %q", dir, name, stmt.Type)
			}
			if !slices.EqualFunc(stmt.Subject, want, func(a, b attest.Subject) bool { return a.Name == b.Name && a.Digest["sha256"] == b.Digest["sha256"] }) {
				t.Errorf("%s/%s subjects %v, want the tree's regular files %v", dir, name, stmt.Subject, want)
			}
			for _, s := range stmt.Subject {
				if s.Name == "ver" && s.Digest["sha256"] != hex.EncodeToString(sum[:]) {
					t.Errorf("%s/%s: subject ver has %s, want the digest of %q", dir, name, s.Digest["sha256"], arch)
				}
			}
			switch name {
			case "sbom.spdx.json":
				if stmt.PredicateType != attest.PredicateSPDX || sbomVersion(t, stmt, "ver") != arch {
					t.Errorf("%s SBOM: predicate %s, ver %q, want an SPDX document of its own tree (%s)", dir, stmt.PredicateType, sbomVersion(t, stmt, "ver"), arch)
				}
			case "provenance.json":
				if stmt.PredicateType != attest.PredicateSLSA1 {
					t.Errorf("%s provenance: predicate %s", dir, stmt.PredicateType)
				}
			}
			if tb, ok := tarFiles[dir+"/"+name]; !ok || !bytes.Equal(tb, raw) {
				t.Errorf("tar output's %s/%s differs from the local output's (present: %v)", dir, name, ok)
			}
		}
		if tb := tarFiles[dir+"/ver"]; string(tb) != arch+"\n" {
			t.Errorf("tar output's %s/ver = %q", dir, tb)
		}
	}
}

// teeProgress sends each event to both.
type teeProgress struct{ a, b solver.Progress }

func (p teeProgress) Event(e solver.Event) { p.a.Event(e); p.b.Event(e) }

// regularFileSubjects are the regular files under root but the
// attestation files, as statement subjects.
func regularFileSubjects(t *testing.T, root string) []attest.Subject {
	t.Helper()
	var out []attest.Subject
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		if slices.Contains(attestationFiles, rel) {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(b)
		out = append(out, attest.Subject{Name: filepath.ToSlash(rel), Digest: map[string]string{"sha256": hex.EncodeToString(sum[:])}})
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// readTarFiles returns the regular files of a tar by name, and checks the
// attestation files' mode.
func readTarFiles(t *testing.T, file string) map[string][]byte {
	t.Helper()
	f, err := os.Open(file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]byte{}
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		if slices.Contains(attestationFiles, path.Base(hdr.Name)) && hdr.Mode != 0o600 {
			t.Errorf("tar entry %s mode %o, want 0600 as BuildKit", hdr.Name, hdr.Mode)
		}
		b, _ := io.ReadAll(tr)
		out[strings.TrimPrefix(hdr.Name, "./")] = b
	}
}
