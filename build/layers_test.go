package build_test

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/exporter"
	"github.com/builder-dev/builder/internal/testutil"
	"github.com/builder-dev/builder/internal/userns"
	"github.com/builder-dev/builder/output"
	"github.com/builder-dev/builder/run"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

// TestLayerDepth builds a Dockerfile of 201 layers. The build's own
// overlays stack them all; exporting them as they are fails saying what to
// do, since Docker and podman could not run the image; with --squash-above
// the oldest layers are merged into one and the image, with the same file
// tree, runs with `builder run` and under podman.
func TestLayerDepth(t *testing.T) {
	testutil.RequiresRoot(t)
	reg := testutil.InProcessRegistry(t)
	base := reg + "/busybox:1"
	testutil.PushImage(t, testutil.BusyboxImage(t), base)
	// COPY makes a layer without starting a sandbox: the cheapest deep image.
	var df strings.Builder
	fmt.Fprintf(&df, "FROM %s\n", base)
	files := map[string]string{}
	for i := 1; i < 200; i++ {
		files[fmt.Sprintf("f%03d", i)] = fmt.Sprintf("%d\n", i)
		fmt.Fprintf(&df, "COPY f%03d /\n", i)
	}
	df.WriteString("RUN rm /f002 && echo changed > /f001\nCMD [\"cat\", \"/f150\", \"/f001\"]\n")
	st := openState(t, t.TempDir())
	ctxDir := writeContext(t, files)

	ev := newEvents()
	_, err := st.Build(t.Context(), build.Options{ContextDir: ctxDir, Dockerfile: []byte(df.String()), Progress: ev, Tags: []string{"deep"}})
	if !errors.Is(err, exporter.ErrTooManyLayers) || !strings.Contains(err.Error(), "201 layers") || !strings.Contains(err.Error(), "--squash-above=125") {
		t.Fatalf("build of 201 layers = %v, want ErrTooManyLayers naming the count, the limit and --squash-above\n%s", err, ev.logs.String())
	}

	dockerTar := filepath.Join(t.TempDir(), "deep.tar")
	ev = newEvents()
	res, err := st.Build(t.Context(), build.Options{ContextDir: ctxDir, Dockerfile: []byte(df.String()), Progress: ev, Tags: []string{"deep"}, SquashAbove: 100,
		Outputs: []output.Spec{{Type: "image"}, {Type: "docker", Dest: dockerTar, Names: []string{"deep:latest"}}}})
	if err != nil {
		t.Fatalf("build with SquashAbove 100: %v\n%s", err, ev.logs.String())
	}
	if ran := ev.ran(); len(ran) != 0 {
		t.Errorf("the second build ran %d steps, want all cached: %v", len(ran), ran)
	}
	img, err := exporter.V1Image(st.Content, res.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Errorf("validate.Image: %v", err)
	}
	layers, _ := img.Layers()
	cfg, _ := img.ConfigFile()
	nonEmpty := 0
	for _, h := range cfg.History {
		if !h.EmptyLayer {
			nonEmpty++
		}
	}
	if len(layers) != 100 || nonEmpty != 100 || len(cfg.History) != 202 {
		t.Errorf("image has %d layers, %d non-empty history entries of %d; want 100, 100 of 202", len(layers), nonEmpty, len(cfg.History))
	}
	tree := imageFiles(t, layers)
	for p, want := range map[string]string{"f001": "changed\n", "f003": "3\n", "f101": "101\n", "f199": "199\n"} {
		if f, ok := tree[p]; !ok || f.content != want {
			t.Errorf("%s = %q (present %v), want %q", p, f.content, ok, want)
		}
	}
	if _, ok := tree["bin/busybox"]; !ok {
		t.Error("the base image's files are missing from the merged layer")
	}
	if _, ok := tree["f002"]; ok {
		t.Error("f002, removed by the last step, is in the image")
	}

	var out bytes.Buffer
	if err := run.Image(t.Context(), st, run.Options{Image: "deep", Stdout: &out, Stderr: &out}); err != nil || out.String() != "150\nchanged\n" {
		t.Errorf("builder run deep: %v, printed %q", err, out.String())
	}
	// podman's overlay storage mounts the 100 layers as one overlay (as
	// root: an unprivileged podman needs a setup of its own).
	if !userns.Rootless() {
		podmanLoadWith(t, "overlay", dockerTar, "deep:latest", "150\nchanged\n")
	}
}

// TestRepeatedNoopRuns builds identical RUN steps that change nothing,
// one after the other: each keeps its empty layer, so a later one must not
// take the first one's result by content (the build failed with "history
// has more layers than the snapshots of the result"), and a rebuild is
// cached.
func TestRepeatedNoopRuns(t *testing.T) {
	testutil.RequiresRoot(t)
	bb, err := os.ReadFile("/bin/busybox")
	if err != nil {
		t.Skip("needs busybox-static: ", err)
	}
	ctxDir := writeContext(t, map[string]string{"busybox": string(bb)})
	os.Chmod(filepath.Join(ctxDir, "busybox"), 0o755)
	run := "RUN [\"/bin/busybox\", \"true\"]\n"
	df := "FROM scratch\nCOPY busybox /bin/busybox\n" + run + run + run
	st := openState(t, t.TempDir())
	for n := 1; n <= 2; n++ {
		ev := newEvents()
		res, err := st.Build(t.Context(), build.Options{ContextDir: ctxDir, Dockerfile: []byte(df), Progress: ev})
		if err != nil {
			t.Fatalf("build %d: %v\n%s", n, err, ev.logs.String())
		}
		if ran := ev.ran(); n == 2 && len(ran) != 0 {
			t.Errorf("the rebuild ran %v, want all cached", ran)
		}
		img, err := exporter.V1Image(st.Content, res.Manifest)
		if err != nil {
			t.Fatal(err)
		}
		if layers, _ := img.Layers(); len(layers) != 4 {
			t.Errorf("build %d: %d layers, want COPY's and three empty ones", n, len(layers))
		}
	}
}
