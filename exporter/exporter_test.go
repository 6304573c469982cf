package exporter_test

import (
	"archive/tar"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/builder-dev/builder/cache"
	"github.com/builder-dev/builder/exporter"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// newExporter returns an exporter over a fresh state: a metadata database,
// a content store and a snapshotter, all in a temporary directory.
func newExporter(t *testing.T) *exporter.Exporter {
	t.Helper()
	return openExporter(t, t.TempDir())
}

// addLayer commits a snapshot id above parent holding files (path ->
// content) and records it, made at created, as a build step would.
func addLayer(t *testing.T, e *exporter.Exporter, id, parent string, created time.Time, files map[string]string) {
	t.Helper()
	if err := e.Snapshots.Prepare(id); err != nil {
		t.Fatal(err)
	}
	for p, data := range files {
		full := filepath.Join(e.Snapshots.FS(id), p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.Snapshots.Commit(id); err != nil {
		t.Fatal(err)
	}
	if err := e.DB.PutSnapshot(cache.Snapshot{ID: id, Parent: parent, Description: "step " + id, Created: created}); err != nil {
		t.Fatal(err)
	}
}

// twoLayers records a chain of two layers and returns its top and a config
// whose history names them, with an empty-layer entry between.
func twoLayers(t *testing.T, e *exporter.Exporter, made time.Time) (string, dockerspec.DockerOCIImage) {
	t.Helper()
	addLayer(t, e, "l1", "", made, map[string]string{"etc/one": "1\n"})
	addLayer(t, e, "l2", "l1", made.Add(time.Minute), map[string]string{"app/two": "2\n"})
	return "l2", twoLayerConfig()
}

// twoLayerConfig is the config twoLayers returns.
func twoLayerConfig() dockerspec.DockerOCIImage {
	var cfg dockerspec.DockerOCIImage
	cfg.OS, cfg.Architecture = "linux", "amd64"
	cfg.Config.Cmd = []string{"/app/two"}
	cfg.History = []ocispec.History{
		{CreatedBy: "COPY one /etc/one"},
		{CreatedBy: "ENV A=b", EmptyLayer: true},
		{CreatedBy: "COPY two /app/two"},
	}
	return cfg
}

func TestAssembleWith(t *testing.T) {
	made := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	epoch := time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		name         string
		opts         exporter.Options
		manifestType string
		layerType    string
	}{
		{"default", exporter.Options{}, ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageLayerGzip},
		{"zstd", exporter.Options{Compression: exporter.Zstd, Level: 3}, ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageLayerZstd},
		{"uncompressed", exporter.Options{Compression: exporter.Uncompressed}, ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageLayer},
		{"docker", exporter.Options{DockerMediaTypes: true}, exporter.DockerManifest, exporter.DockerLayerGzip},
		{"epoch", exporter.Options{SourceDateEpoch: &epoch}, ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageLayerGzip},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newExporter(t)
			top, cfg := twoLayers(t, e, made)
			img, err := e.AssembleWith(t.Context(), top, cfg, tc.opts)
			if err != nil {
				t.Fatalf("AssembleWith(%+v) = %v", tc.opts, err)
			}
			if img.Manifest.MediaType != tc.manifestType || len(img.Layers) != 2 {
				t.Fatalf("AssembleWith(%+v) = manifest %s with %d layers, want %s with 2", tc.opts, img.Manifest.MediaType, len(img.Layers), tc.manifestType)
			}
			for i, l := range img.Layers {
				if l.MediaType != tc.layerType {
					t.Errorf("layer %d media type %s, want %s", i, l.MediaType, tc.layerType)
				}
			}
			v1img, err := exporter.V1Image(e.Content, img.Manifest)
			if err != nil {
				t.Fatal(err)
			}
			// validate.Image reads every layer as gzip; the others get its
			// checks of manifest and config, and their diff_ids below.
			var vopts []validate.Option
			if !strings.HasSuffix(tc.layerType, "gzip") {
				vopts = append(vopts, validate.Fast)
			}
			if err := validate.Image(v1img, vopts...); err != nil {
				t.Errorf("validate.Image: %v", err)
			}
			cf, err := v1img.ConfigFile()
			if err != nil {
				t.Fatal(err)
			}
			if len(cf.RootFS.DiffIDs) != 2 || len(cf.History) != 3 {
				t.Errorf("config has %d diff_ids and %d history entries, want 2 and 3", len(cf.RootFS.DiffIDs), len(cf.History))
			}
			// Each layer's entry takes the time its step's record gives;
			// the empty entry between takes the next layer's, as
			// BuildKit's exporter gives it.
			wantTimes := []time.Time{made, made.Add(time.Minute), made.Add(time.Minute)}
			for i, h := range cf.History {
				if !h.Created.Time.Equal(wantTimes[i]) {
					t.Errorf("history[%d].created = %v, want %v", i, h.Created.Time, wantTimes[i])
				}
			}
			if !cf.Created.Time.Equal(made.Add(time.Minute)) {
				t.Errorf("created = %v, want the last entry's %v", cf.Created.Time, made.Add(time.Minute))
			}
			layers, err := v1img.Layers()
			if err != nil {
				t.Fatal(err)
			}
			for i, l := range layers {
				if got := diffID(t, l.Uncompressed); got != cf.RootFS.DiffIDs[i].String() {
					t.Errorf("layer %d uncompresses to %s, config says %s", i, got, cf.RootFS.DiffIDs[i])
				}
			}
			hdrs := layerFiles(t, layers[1].Uncompressed)
			mtime, ok := hdrs["app/two"]
			if !ok {
				t.Fatalf("layer 2 has %v, want app/two", hdrs)
			}
			if tc.opts.SourceDateEpoch != nil && mtime.After(epoch) {
				t.Errorf("app/two mtime %v, want at most SOURCE_DATE_EPOCH %v", mtime, epoch)
			}
			// The blobs are remembered: a second export writes the same
			// image without compressing anything again.
			again, err := e.AssembleWith(t.Context(), top, cfg, tc.opts)
			if err != nil || again.Manifest.Digest != img.Manifest.Digest {
				t.Errorf("second AssembleWith = %v, %v; want manifest %s", again, err, img.Manifest.Digest)
			}
		})
	}
}

// diffID is the digest of a layer's uncompressed tar.
func diffID(t *testing.T, open func() (io.ReadCloser, error)) string {
	t.Helper()
	rc, err := open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	d, err := digest.FromReader(rc)
	if err != nil {
		t.Fatal(err)
	}
	return d.String()
}

// layerFiles lists a layer tar's files with their modification times.
func layerFiles(t *testing.T, open func() (io.ReadCloser, error)) map[string]time.Time {
	t.Helper()
	rc, err := open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	out := map[string]time.Time{}
	tr := tar.NewReader(rc)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return out
		}
		if err != nil {
			t.Fatal(err)
		}
		out[strings.TrimSuffix(strings.TrimPrefix(hdr.Name, "./"), "/")] = hdr.ModTime
	}
}

func TestAssembleWithLayerLimits(t *testing.T) {
	made := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	e := newExporter(t)
	top, cfg := twoLayers(t, e, made)

	img, err := e.AssembleWith(t.Context(), top, cfg, exporter.Options{SquashAbove: 1})
	if err != nil {
		t.Fatalf("AssembleWith(SquashAbove 1) = %v", err)
	}
	v1img, err := exporter.V1Image(e.Content, img.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(v1img); err != nil {
		t.Errorf("validate.Image of the squashed image: %v", err)
	}
	cf, err := v1img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if len(img.Layers) != 1 || len(cf.RootFS.DiffIDs) != 1 || !cf.History[0].EmptyLayer || cf.History[2].EmptyLayer {
		t.Errorf("SquashAbove 1: %d layers, history %+v; want one layer, the first entry made empty", len(img.Layers), cf.History)
	}
	layers, err := v1img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	files := layerFiles(t, layers[0].Uncompressed)
	if _, ok := files["etc/one"]; !ok {
		t.Errorf("squashed layer has %v, want etc/one and app/two", files)
	}
	if _, ok := files["app/two"]; !ok {
		t.Errorf("squashed layer has %v, want etc/one and app/two", files)
	}

	if _, err := e.AssembleWith(t.Context(), top, cfg, exporter.Options{MaxLayers: 1}); !errors.Is(err, exporter.ErrTooManyLayers) {
		t.Errorf("AssembleWith(MaxLayers 1) = %v, want ErrTooManyLayers", err)
	}
}

func TestAssembleWithRefuses(t *testing.T) {
	made := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	e := newExporter(t)
	top, cfg := twoLayers(t, e, made)

	extra := cfg
	extra.History = append(append([]ocispec.History(nil), cfg.History...), ocispec.History{CreatedBy: "RUN more"})
	if _, err := e.AssembleWith(t.Context(), top, extra, exporter.Options{}); err == nil || !strings.Contains(err.Error(), "more layers than") {
		t.Errorf("AssembleWith(history of 3 layers over 2 snapshots) = %v, want an error", err)
	}
	short := cfg
	short.History = cfg.History[:1]
	if _, err := e.AssembleWith(t.Context(), top, short, exporter.Options{}); err == nil || !strings.Contains(err.Error(), "history names 1 layers") {
		t.Errorf("AssembleWith(history of 1 layer over 2 snapshots) = %v, want an error", err)
	}
	if _, err := e.AssembleWith(t.Context(), top, cfg, exporter.Options{Compression: exporter.Zstd, DockerMediaTypes: true}); err == nil {
		t.Error("AssembleWith(zstd with Docker media types) succeeded")
	}
	if _, err := e.AssembleWith(t.Context(), top, cfg, exporter.Options{Level: 10}); err == nil {
		t.Error("AssembleWith(gzip level 10) succeeded")
	}
}

// TestPushNeedsKeychain checks that the credentials of a push come from the
// caller: without a keychain Push refuses, rather than falling back to one
// of its own.
func TestPushNeedsKeychain(t *testing.T) {
	e := newExporter(t)
	top, cfg := twoLayers(t, e, time.Now())
	img, err := e.AssembleWith(t.Context(), top, cfg, exporter.Options{})
	if err != nil {
		t.Fatal(err)
	}
	ref, err := name.ParseReference("127.0.0.1:1/app:1")
	if err != nil {
		t.Fatal(err)
	}
	if err := exporter.Push(t.Context(), e.Content, img.Manifest, ref, nil, nil); err == nil || !strings.Contains(err.Error(), "no keychain") {
		t.Errorf("Push(keychain nil) = %v, want an error saying no keychain was given", err)
	}
}
