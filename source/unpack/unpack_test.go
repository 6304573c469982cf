package unpack

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/builder-dev/builder/snapshot"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// gzipLayer is a gzip layer of one file, and its tar's digest.
func gzipLayer(t *testing.T) ([]byte, digest.Digest) {
	var tb bytes.Buffer
	tw := tar.NewWriter(&tb)
	if err := tw.WriteHeader(&tar.Header{Name: "f", Mode: 0o644, Size: 5, Typeflag: tar.TypeReg, Uid: os.Getuid(), Gid: os.Getgid()}); err != nil {
		t.Fatal(err)
	}
	tw.Write([]byte("hello"))
	tw.Close()
	var gb bytes.Buffer
	zw := gzip.NewWriter(&gb)
	zw.Write(tb.Bytes())
	zw.Close()
	return gb.Bytes(), digest.FromBytes(tb.Bytes())
}

// TestLayer unpacks a gzip layer into a snapshot; a layer whose tar is not
// the config's diff ID fails.
func TestLayer(t *testing.T) {
	snaps, err := snapshot.NewSnapshotter(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	blob, diffID := gzipLayer(t)
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(blob), Size: int64(len(blob))}
	if _, err := Layer(t.Context(), snaps, "good", bytes.NewReader(blob), desc, diffID); err != nil {
		t.Fatalf("Layer() = %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(snaps.FS("good"), "f")); err != nil || string(b) != "hello" {
		t.Errorf("f = %q, %v; want hello", b, err)
	}
	_, err = Layer(t.Context(), snaps, "bad", bytes.NewReader(blob), desc, digest.FromString("other"))
	if err == nil || !strings.Contains(err.Error(), "uncompressed digest") {
		t.Errorf("Layer(wrong diff ID) = %v, want an uncompressed digest error", err)
	}
}

// TestCompression maps layer media types to their compression.
func TestCompression(t *testing.T) {
	for mt, want := range map[string]string{
		ocispec.MediaTypeImageLayerGzip:                     "gzip",
		ocispec.MediaTypeImageLayerZstd:                     "zstd",
		ocispec.MediaTypeImageLayer:                         "none",
		"application/vnd.docker.image.rootfs.diff.tar.gzip": "gzip",
		"application/vnd.docker.image.rootfs.diff.tar":      "none",
		"application/x-unknown":                             "application/x-unknown",
	} {
		if got := Compression(mt); got != want {
			t.Errorf("Compression(%q) = %q, want %q", mt, got, want)
		}
	}
}
