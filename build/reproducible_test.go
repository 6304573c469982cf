package build_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/exporter"
	"github.com/builder-dev/builder/internal/testutil"
	"github.com/builder-dev/builder/output"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// reproDockerfile makes files and directories in RUN steps (with their
// times of now), COPYs context files and records history entries with and
// without layers.
const reproDockerfile = `FROM {{BASE}}
ARG SOURCE_DATE_EPOCH
ENV A=1
COPY app.txt lib/ /app/
RUN mkdir -p /data/sub && echo run > /data/sub/file && ln -s file /data/sub/link && ln /data/sub/file /data/hard && mkfifo /data/fifo
RUN echo more >> /app/app.txt && rm /app/helper.txt && echo "epoch $SOURCE_DATE_EPOCH" > /epoch
WORKDIR /work
CMD ["cat", "/app/app.txt"]
`

const reproEpoch = 1700000000

// reproBuild builds reproDockerfile on base in a fresh context directory
// whose files have the given mtime.
func reproBuild(t *testing.T, st *build.State, base string, mtime time.Time, args map[string]string, outputs ...output.Spec) *build.Result {
	t.Helper()
	ctxDir := writeContext(t, map[string]string{"app.txt": "app\n", "lib/helper.txt": "helper\n"})
	for _, p := range []string{"app.txt", "lib/helper.txt", "lib", "."} {
		if err := os.Chtimes(filepath.Join(ctxDir, p), mtime, mtime); err != nil {
			t.Fatal(err)
		}
	}
	ev := newEvents()
	res, err := st.Build(t.Context(), build.Options{
		ContextDir: ctxDir, Dockerfile: []byte(strings.ReplaceAll(reproDockerfile, "{{BASE}}", base)),
		DockerfileName: "Dockerfile", Progress: ev, BuildArgs: args, Outputs: outputs,
	})
	if err != nil {
		t.Fatalf("build: %v\n%s", err, ev.logs.String())
	}
	return res
}

// TestReproducibleBuilds builds the same source with SOURCE_DATE_EPOCH in
// two empty state directories, at different times and from contexts with
// different mtimes, and wants the same image; a state dir that exported
// the layers without the epoch first must give the same image too.
func TestReproducibleBuilds(t *testing.T) {
	base := busyboxBase(t)
	args := map[string]string{"SOURCE_DATE_EPOCH": "1700000000"}
	epoch := time.Unix(reproEpoch, 0).UTC()

	st1 := openState(t, t.TempDir())
	r1 := reproBuild(t, st1, base, time.Now(), args)
	time.Sleep(1100 * time.Millisecond) // RUN-made files get other times
	st2 := openState(t, t.TempDir())
	r2 := reproBuild(t, st2, base, time.Now().Add(time.Hour), args)
	if r1.Manifest.Digest != r2.Manifest.Digest {
		t.Errorf("two builds with SOURCE_DATE_EPOCH: manifests %s and %s, want the same", r1.Manifest.Digest, r2.Manifest.Digest)
		diffImages(t, st1, r1, st2, r2)
	}

	// Without the epoch first: the unclamped blobs memoized then must not
	// be reused for the clamped export.
	st3 := openState(t, t.TempDir())
	r3 := reproBuild(t, st3, base, time.Now(), nil)
	if r3.Manifest.Digest == r1.Manifest.Digest {
		t.Fatalf("build without SOURCE_DATE_EPOCH gave the reproducible image %s", r3.Manifest.Digest)
	}
	r4 := reproBuild(t, st3, base, time.Now(), args)
	if r4.Manifest.Digest != r1.Manifest.Digest {
		t.Errorf("build with SOURCE_DATE_EPOCH after one without: %s, want %s", r4.Manifest.Digest, r1.Manifest.Digest)
		diffImages(t, st1, r1, st3, r4)
	}

	img, err := exporter.V1Image(st1.Content, r1.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Errorf("validate.Image: %v", err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if !cfg.Created.Time.Equal(epoch) {
		t.Errorf("config created = %v, want %v", cfg.Created.Time, epoch)
	}
	for i, h := range cfg.History {
		if strings.HasPrefix(h.CreatedBy, "(layer of") || h.Comment != "builder.dockerfile.v0" {
			continue // the base image's
		}
		if !h.Created.Time.Equal(epoch) {
			t.Errorf("history[%d] %q created = %v, want %v", i, h.CreatedBy, h.Created.Time, epoch)
		}
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	files := imageFiles(t, layers[1:])
	for name, f := range files {
		if f.hdr.ModTime.After(epoch) {
			t.Errorf("%s: mtime %v is after SOURCE_DATE_EPOCH %v", name, f.hdr.ModTime, epoch)
		}
	}
	if f := files["epoch"]; f.content != "epoch 1700000000\n" {
		t.Errorf("/epoch = %q, want RUN to see SOURCE_DATE_EPOCH", f.content)
	}

	// Every compression gives the same diff_ids, and so the same config.
	want, err := img.ConfigName()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	var outs []output.Spec
	for _, c := range []string{"gzip", "zstd", "uncompressed"} {
		for _, force := range []bool{false, true} {
			outs = append(outs, output.Spec{Type: "oci", Dest: filepath.Join(dir, fmt.Sprintf("%s-%v", c, force)), Compression: c, ForceCompression: force, Directory: true})
		}
	}
	outs = append(outs, output.Spec{Type: "oci", Dest: filepath.Join(dir, "gzip-9"), Compression: "gzip", CompressionLevel: 9, Directory: true})
	for _, st := range []*build.State{st1, st2} {
		reproBuild(t, st, base, time.Now(), args, outs...)
		digests := map[string]bool{}
		for _, o := range outs {
			img := testutil.LayoutImage(t, o.Dest)
			if got, _ := img.ConfigName(); got != want {
				t.Errorf("%s: config %s, want %s (same diff_ids and config as gzip)", filepath.Base(o.Dest), got, want)
			}
			m, err := img.Manifest()
			if err != nil {
				t.Fatal(err)
			}
			wantType := map[string]string{"gzip": "gzip", "zstd": "zstd", "uncompressed": "tar"}[o.Compression]
			for i, l := range m.Layers {
				// Without force-compression the base layer stays gzip.
				if (i > 0 || o.ForceCompression) && !strings.HasSuffix(string(l.MediaType), wantType) {
					t.Errorf("%s: layer %d media type %s, want %s", filepath.Base(o.Dest), i, l.MediaType, wantType)
				}
			}
			d, _ := img.Digest()
			digests[filepath.Base(o.Dest)+" "+d.String()] = true
		}
		if len(digests) != len(outs) {
			t.Errorf("compressions gave %d distinct manifests for %d outputs", len(digests), len(outs))
		}
	}
}

// diffImages reports how two images that should be equal differ.
func diffImages(t *testing.T, st1 *build.State, r1 *build.Result, st2 *build.State, r2 *build.Result) {
	t.Helper()
	if string(r1.Config) != string(r2.Config) {
		t.Errorf("configs differ:\n%s\n%s", r1.Config, r2.Config)
	}
	i1, _ := exporter.V1Image(st1.Content, r1.Manifest)
	i2, _ := exporter.V1Image(st2.Content, r2.Manifest)
	l1, _ := i1.Layers()
	l2, _ := i2.Layers()
	for i := range min(len(l1), len(l2)) {
		d1, _ := l1[i].DiffID()
		d2, _ := l2[i].DiffID()
		if d1 == d2 {
			continue
		}
		f1, f2 := imageFiles(t, l1[i:i+1]), imageFiles(t, l2[i:i+1])
		for name, a := range f1 {
			b, ok := f2[name]
			if !ok {
				t.Errorf("layer %d: %s only in the first", i, name)
				continue
			}
			if !sameHeader(a, b) || a.content != b.content {
				t.Errorf("layer %d: %s differs:\n%+v\n%+v", i, name, a.hdr, b.hdr)
			}
		}
		for name := range f2 {
			if _, ok := f1[name]; !ok {
				t.Errorf("layer %d: %s only in the second", i, name)
			}
		}
	}
}

func sameHeader(a, b imageFile) bool {
	return a.hdr.Name == b.hdr.Name && a.hdr.Mode == b.hdr.Mode && a.hdr.ModTime.Equal(b.hdr.ModTime) &&
		a.hdr.Uid == b.hdr.Uid && a.hdr.Gid == b.hdr.Gid && a.hdr.Size == b.hdr.Size && a.hdr.Linkname == b.hdr.Linkname && a.hdr.Typeflag == b.hdr.Typeflag
}
