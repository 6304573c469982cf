package multiarch

import (
	"archive/tar"
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/builder-dev/builder/attest"
	"github.com/builder-dev/builder/cache/content"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// entry is one file of a test layer: a regular file, or a symlink when
// link is set.
type entry struct{ name, body, link string }

// storeImage stores an image of one uncompressed layer of files.
func storeImage(t *testing.T, store *content.Store, files []entry) ocispec.Descriptor {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, f := range files {
		hdr := &tar.Header{Name: f.name, Typeflag: tar.TypeReg, Mode: 0o644, Size: int64(len(f.body)), ModTime: time.Unix(1, 0)}
		if f.link != "" {
			hdr = &tar.Header{Name: f.name, Typeflag: tar.TypeSymlink, Linkname: f.link, Mode: 0o777, ModTime: time.Unix(1, 0)}
		}
		if err := tw.WriteHeader(hdr); err != nil {
			t.Fatal(err)
		}
		if _, err := tw.Write([]byte(f.body)); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	layer, err := store.WriteBytes(t.Context(), buf.Bytes())
	if err != nil {
		t.Fatal(err)
	}
	m, _ := json.Marshal(ocispec.Manifest{MediaType: ocispec.MediaTypeImageManifest,
		Layers: []ocispec.Descriptor{{MediaType: ocispec.MediaTypeImageLayer, Digest: layer, Size: int64(buf.Len())}}})
	md, err := store.WriteBytes(t.Context(), m)
	if err != nil {
		t.Fatal(err)
	}
	return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: md, Size: int64(len(m))}
}

func statements() []attest.Statement {
	return []attest.Statement{
		{Type: "https://in-toto.io/Statement/v1", PredicateType: attest.PredicateSPDX, Predicate: map[string]string{}},
		{Type: "https://in-toto.io/Statement/v1", PredicateType: attest.PredicateSLSA1, Predicate: map[string]string{}},
	}
}

// TestWriteDirsAttestationOverSymlink: an image whose provenance.json
// and sbom.spdx.json are symlinks to files outside the output (a host's
// /etc/shadow) gets regular 0600 attestation files in their place; the
// files they pointed to are untouched.
func TestWriteDirsAttestationOverSymlink(t *testing.T) {
	tmp := t.TempDir()
	store, err := content.NewStore(filepath.Join(tmp, "content"))
	if err != nil {
		t.Fatal(err)
	}
	victim := filepath.Join(tmp, "shadow")
	if err := os.WriteFile(victim, []byte("secret\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(tmp, "out")
	man := storeImage(t, store, []entry{{name: "a", body: "a\n"}, {name: "provenance.json", link: victim}, {name: "sbom.spdx.json", link: "../shadow"}})
	epoch := time.Unix(1700000000, 0)
	if err := WriteDirs(t.Context(), dest, store, []Tree{{Manifest: man, Statements: statements(), Epoch: &epoch}}); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(victim); string(b) != "secret\n" {
		t.Fatalf("the file outside the output became %q", b)
	}
	for _, name := range []string{"provenance.json", "sbom.spdx.json"} {
		fi, err := os.Lstat(filepath.Join(dest, name))
		if err != nil {
			t.Fatal(err)
		}
		if !fi.Mode().IsRegular() || fi.Mode().Perm() != 0o600 {
			t.Errorf("%s: mode %v, want a regular 0600 file", name, fi.Mode())
		}
		if !fi.ModTime().Equal(epoch) {
			t.Errorf("%s: mtime %v, want SOURCE_DATE_EPOCH %v", name, fi.ModTime(), epoch)
		}
	}
}

// TestWriteDirsSubjectsOfTheTree: building twice into the same dest, the
// second build's subjects are its tree's files, not the first's
// attestation files nor files left in dest.
func TestWriteDirsSubjectsOfTheTree(t *testing.T) {
	tmp := t.TempDir()
	store, err := content.NewStore(filepath.Join(tmp, "content"))
	if err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(tmp, "out")
	man := storeImage(t, store, []entry{{name: "a", body: "a\n"}, {name: "b", body: "b\n"}})
	trees := []Tree{{Manifest: man, Statements: statements()}}
	for range 2 {
		if err := WriteDirs(t.Context(), dest, store, trees); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dest, "leftover"), []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := os.ReadFile(filepath.Join(dest, "provenance.json"))
	if err != nil {
		t.Fatal(err)
	}
	var st attest.Statement
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, s := range st.Subject {
		names = append(names, s.Name)
	}
	if want := []string{"a", "b"}; !slices.Equal(names, want) {
		t.Fatalf("subjects %v, want the tree's files %v", names, want)
	}
	if d := st.Subject[0].Digest["sha256"]; d != digest.FromString("a\n").Encoded() {
		t.Errorf("subject a: %s", d)
	}
}

// TestWriteTarEpoch: the tar output's attestation entries have the
// build's SOURCE_DATE_EPOCH as their time.
func TestWriteTarEpoch(t *testing.T) {
	tmp := t.TempDir()
	store, err := content.NewStore(filepath.Join(tmp, "content"))
	if err != nil {
		t.Fatal(err)
	}
	man := storeImage(t, store, []entry{{name: "a", body: "a\n"}})
	epoch := time.Unix(1700000000, 0)
	var buf bytes.Buffer
	if err := WriteTar(t.Context(), &buf, store, []Tree{{Manifest: man, Statements: statements(), Epoch: &epoch}}); err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(&buf)
	seen := 0
	for {
		hdr, err := tr.Next()
		if err != nil {
			break
		}
		if hdr.Name == "provenance.json" || hdr.Name == "sbom.spdx.json" {
			seen++
			if !hdr.ModTime.Equal(epoch) {
				t.Errorf("%s: time %v, want %v", hdr.Name, hdr.ModTime, epoch)
			}
		}
	}
	if seen != 2 {
		t.Fatalf("%d attestation entries, want 2", seen)
	}
}
