package testutil

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// UntarLayout unpacks an OCI image layout tarball into a temporary
// directory and opens it.
func UntarLayout(t testing.TB, tarPath string) layout.Path {
	t.Helper()
	dir := t.TempDir()
	f, err := os.Open(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tr := tar.NewReader(f)
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		p := filepath.Join(dir, hdr.Name)
		b, err := io.ReadAll(tr)
		if err != nil {
			t.Fatalf("reading %s from %s: %v", hdr.Name, tarPath, err)
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	lp, err := layout.FromPath(dir)
	if err != nil {
		t.Fatalf("reading OCI layout %s: %v", tarPath, err)
	}
	return lp
}

// LayoutImage reads the one image of an OCI layout directory and validates it.
func LayoutImage(t testing.TB, dir string) v1.Image {
	t.Helper()
	lp, err := layout.FromPath(dir)
	if err != nil {
		t.Fatalf("reading OCI layout %s: %v", dir, err)
	}
	idx, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 {
		t.Fatalf("%s: index lists %d manifests, want 1", dir, len(im.Manifests))
	}
	img, err := lp.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	CheckImage(t, dir, img)
	return img
}

// CheckImage runs validate.Image, which reads every layer as gzip; images
// with zstd or uncompressed layers get the structural checks of
// validate.Fast and their layers are checked here: the blob has its
// digest and decompresses (as go-containerregistry detects it) to the
// config's diff_id.
func CheckImage(t testing.TB, what string, img v1.Image) {
	t.Helper()
	m, err := img.Manifest()
	if err != nil {
		t.Fatal(err)
	}
	allGzip := true
	for _, l := range m.Layers {
		allGzip = allGzip && strings.HasSuffix(string(l.MediaType), "gzip")
	}
	if allGzip {
		if err := validate.Image(img); err != nil {
			t.Errorf("validate.Image(%s): %v", what, err)
		}
		return
	}
	if err := validate.Image(img, validate.Fast); err != nil {
		t.Errorf("validate.Image(%s, validate.Fast): %v", what, err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	if len(layers) != len(cfg.RootFS.DiffIDs) {
		t.Fatalf("%s: %d layers, %d diff_ids", what, len(layers), len(cfg.RootFS.DiffIDs))
	}
	for i, l := range layers {
		rc, err := l.Compressed()
		if err != nil {
			t.Fatal(err)
		}
		got, _, err := v1.SHA256(rc)
		rc.Close()
		if err != nil || got != m.Layers[i].Digest {
			t.Errorf("%s: layer %d blob digest %s (%v), want %s", what, i, got, err, m.Layers[i].Digest)
		}
		rc, err = l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		got, _, err = v1.SHA256(rc)
		rc.Close()
		if err != nil || got != cfg.RootFS.DiffIDs[i] {
			t.Errorf("%s: layer %d (%s) uncompresses to %s (%v), want diff_id %s", what, i, m.Layers[i].MediaType, got, err, cfg.RootFS.DiffIDs[i])
		}
	}
}
