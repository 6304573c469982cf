package unpack

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// commitSignal records a snapshotter's Commit.
type commitSignal struct {
	snapshot.Snapshotter
	committed chan struct{}
}

func (c commitSignal) Commit(id string) error {
	err := c.Snapshotter.Commit(id)
	close(c.committed)
	return err
}

// tailReader gives blob, then, at its end, waits for tail (a download
// still checking and storing the blob) and returns what tail gives.
type tailReader struct {
	r    io.Reader
	tail func() error
}

func (t *tailReader) Read(b []byte) (int, error) {
	n, err := t.r.Read(b)
	if err == io.EOF {
		if terr := t.tail(); terr != nil {
			return n, terr
		}
	}
	return n, err
}

// TestLayerCommitsBeforeBlobEnds: once the tar has ended, the layer is
// committed (its syncfs) while the download still checks the blob, and
// Layer returns only at the blob's end, with its error.
func TestLayerCommitsBeforeBlobEnds(t *testing.T) {
	snaps, err := snapshot.NewSnapshotter(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	blob, diffID := gzipLayer(t)
	desc := ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: digest.FromBytes(blob), Size: int64(len(blob))}
	for _, tailErr := range []error{nil, errors.New("blob digest mismatch")} {
		c := commitSignal{snaps, make(chan struct{})}
		id := fmt.Sprintf("l%v", tailErr == nil)
		ended := false
		r := &tailReader{r: bytes.NewReader(blob), tail: func() error {
			select {
			case <-c.committed:
			case <-time.After(10 * time.Second):
				return errors.New("the layer was not committed before the blob's end")
			}
			ended = true
			return tailErr
		}}
		_, err := Layer(t.Context(), c, id, r, desc, diffID)
		if tailErr == nil && (err != nil || !ended) {
			t.Errorf("Layer() = %v, blob ended %v; want nil, true", err, ended)
		}
		if tailErr != nil && (err == nil || !strings.Contains(err.Error(), tailErr.Error())) {
			t.Errorf("Layer(blob failing at its end) = %v, want its error", err)
		}
	}
}
