package imagestore

import (
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/builder-dev/builder/exporter"
	"github.com/builder-dev/builder/internal/testutil/statedir"
	"github.com/builder-dev/builder/source"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

func TestNormalise(t *testing.T) {
	for _, tc := range []struct{ in, want string }{
		{"app", "app:latest"},
		{"app:1", "app:1"},
		{"localhost:5000/team/app", "localhost:5000/team/app:latest"},
		{"localhost:5000/team/app:v2", "localhost:5000/team/app:v2"},
		{"app@sha256:abc", "app@sha256:abc"},
	} {
		if got := Normalise(tc.in); got != tc.want {
			t.Errorf("Normalise(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}

// newStore returns a store over a fresh state in a temporary directory.
func newStore(t *testing.T) *Store {
	t.Helper()
	dir := t.TempDir()
	db, cs, snaps := statedir.Open(t, dir)
	regs := &source.Registries{Content: cs}
	return &Store{
		DB: db, Content: cs, Registries: regs,
		Puller:   &source.Puller{Registries: regs, DB: db, Snapshots: snaps},
		Platform: ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH},
	}
}

func TestSniffLayer(t *testing.T) {
	s := newStore(t)
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write([]byte("a tar"))
	zw.Close()
	for _, tc := range []struct {
		name string
		data []byte
		want string
	}{
		{"gzip", gz.Bytes(), exporter.DockerLayerGzip},
		{"zstd", []byte{0x28, 0xb5, 0x2f, 0xfd, 0, 0}, ocispec.MediaTypeImageLayerZstd},
		{"tar", []byte("etc/passwd\x00\x00\x00"), exporter.DockerLayer},
		// Compressions an image layer cannot have are read as plain tars,
		// which the unpacking then refuses.
		{"xz", []byte{0xfd, '7', 'z', 'X', 'Z', 0}, exporter.DockerLayer},
		{"short", []byte{0x1f}, exporter.DockerLayer},
		{"empty", nil, exporter.DockerLayer},
	} {
		d, err := s.Content.WriteBytes(t.Context(), tc.data)
		if err != nil {
			t.Fatal(err)
		}
		if got, err := s.sniffLayer(d); err != nil || got != tc.want {
			t.Errorf("sniffLayer(%s) = %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}

// writeLayout writes a random image of two layers as an OCI layout
// directory and returns it and the image's manifest digest.
func writeLayout(t *testing.T) (string, string) {
	t.Helper()
	img, err := random.Image(8192, 2)
	if err != nil {
		t.Fatal(err)
	}
	img = mutate.ConfigMediaType(img, "application/vnd.oci.image.config.v1+json")
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf.OS, cf.Architecture = "linux", runtime.GOARCH
	if img, err = mutate.ConfigFile(img, cf); err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	return dir, d.String()
}

// TestLoadLayout loads an OCI layout directory as it is, without a tar of
// it: its image lands in the store, unpacked, under its digest.
func TestLoadLayout(t *testing.T) {
	s := newStore(t)
	dir, want := writeLayout(t)
	loaded, err := s.LoadLayout(t.Context(), dir)
	if err != nil {
		t.Fatalf("LoadLayout = %v", err)
	}
	if len(loaded) != 1 || loaded[0].Manifest.Digest.String() != want || loaded[0].Name != want {
		t.Fatalf("LoadLayout = %+v, want one image %s named by its digest", loaded, want)
	}
	rec, err := s.Image(want)
	if err != nil || rec.Snapshot == "" {
		t.Errorf("Image(%s) = %+v, %v; want a record with the unpacked snapshot", want, rec, err)
	}
	// The layout as a build context: tagged in the store by name.
	ref, err := s.LayoutContext(t.Context(), "Base", "oci-layout://"+dir+"@"+want)
	if err != nil || !strings.HasPrefix(ref, "docker-image://builder-context/base:") {
		t.Errorf("LayoutContext = %q, %v; want a docker-image://builder-context/base: reference", ref, err)
	}
	if _, err := s.LayoutContext(t.Context(), "base", "oci-layout://"+t.TempDir()); err == nil || !strings.Contains(err.Error(), "no index.json") {
		t.Errorf("LayoutContext(an empty directory) = %v, want an error naming index.json", err)
	}
}

// TestLoadLayoutChecksDigests swaps a layer blob of a layout for other
// bytes under the same name: the load must refuse it, not store bytes
// under a digest they do not have.
func TestLoadLayoutChecksDigests(t *testing.T) {
	s := newStore(t)
	dir, _ := writeLayout(t)
	blobs, err := filepath.Glob(filepath.Join(dir, "blobs", "sha256", "*"))
	if err != nil || len(blobs) == 0 {
		t.Fatalf("layout blobs: %v, %v", blobs, err)
	}
	var victim string
	for _, b := range blobs {
		if fi, err := os.Stat(b); err == nil && fi.Size() > 1024 {
			victim = b // a layer: the manifest and the config are small
			break
		}
	}
	if victim == "" {
		t.Fatal("no layer blob in the layout")
	}
	if err := os.WriteFile(victim, []byte("not the layer"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LoadLayout(t.Context(), dir); err == nil || !strings.Contains(err.Error(), filepath.Base(victim)) {
		t.Errorf("LoadLayout(a layout with a forged blob) = %v, want an error naming blob %s", err, filepath.Base(victim))
	}
	if s.Content.Exists(digest.NewDigestFromEncoded(digest.SHA256, filepath.Base(victim))) {
		t.Errorf("the forged blob is in the content store")
	}
}
