package build_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/builder-dev/builder/exporter"
	"github.com/builder-dev/builder/internal/userns"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/executor"
	"github.com/builder-dev/builder/internal/testutil"
	"github.com/builder-dev/builder/output"
	"github.com/builder-dev/builder/solver"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

func TestMain(m *testing.M) {
	executor.Init()
	// As an ordinary user the tests run rootless: as root of a user namespace.
	userns.Init(func(w string) { fmt.Fprintln(os.Stderr, "WARNING:", w) })
	os.Exit(m.Run())
}

// events records solver events by step name.
type events struct {
	mu    sync.Mutex
	kinds map[string][]solver.EventKind
	logs  bytes.Buffer
}

func newEvents() *events { return &events{kinds: map[string][]solver.EventKind{}} }

func (e *events) Event(ev solver.Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if ev.Kind == solver.Log {
		e.logs.Write(ev.Data)
		return
	}
	e.kinds[ev.Name] = append(e.kinds[ev.Name], ev.Kind)
}

func (e *events) ran() []string {
	var out []string
	for name, kinds := range e.kinds {
		for _, k := range kinds {
			if k == solver.Completed {
				out = append(out, name)
			}
		}
	}
	return out
}

func writeContext(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func openState(t *testing.T, root string) *build.State {
	t.Helper()
	st, err := build.Open(root, build.StateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	return st
}

const appDockerfile = `FROM {{BASE}} AS compile
WORKDIR /src
COPY main.txt lib/ ./
RUN echo "compiled $(cat main.txt) with $(cat helper.txt)" > /out.txt && \
    echo 'app:x:1000:1000::/home/app:/bin/sh' >> /etc/passwd && \
    echo 'app:x:1000:' >> /etc/group

FROM {{BASE}}
ENV GREETING="hello world" LEVEL=2
RUN echo 'app:x:1000:1000::/home/app:/bin/sh' >> /etc/passwd && echo 'app:x:1000:' >> /etc/group && mkdir -p /home/app && chown app:app /home/app
COPY --from=compile /out.txt /opt/app/out.txt
COPY --chown=app:app conf.txt /etc/app/
WORKDIR /home/app
USER app
RUN echo "$GREETING from $(id -un):$(id -gn) in $(pwd)" > made-by-run.txt
CMD ["cat", "/opt/app/out.txt", "/home/app/made-by-run.txt"]
`

// TestBuildPushPullRun is the end-to-end path: a two-stage Dockerfile built
// on a busybox base from a real registry with auth, pushed back to it, read
// back with go-containerregistry, rebuilt from cache, and run.
func TestBuildPushPullRun(t *testing.T) {
	testutil.RequiresRoot(t)
	reg := testutil.DistributionRegistry(t, "tester", "s3cret")
	t.Setenv("DOCKER_CONFIG", testutil.DockerConfig(t, reg, "tester", "s3cret"))
	auth := remote.WithAuth(&authn.Basic{Username: "tester", Password: "s3cret"})
	base := reg + "/base/busybox:1"
	testutil.PushImage(t, testutil.BusyboxImage(t), base, auth)

	ctxDir := writeContext(t, map[string]string{
		"Dockerfile":     strings.ReplaceAll(appDockerfile, "{{BASE}}", base),
		"main.txt":       "main",
		"lib/helper.txt": "helper",
		"conf.txt":       "conf",
		"unrelated.txt":  "not copied",
	})
	df, _ := os.ReadFile(filepath.Join(ctxDir, "Dockerfile"))
	st := openState(t, t.TempDir())
	tag := reg + "/team/app:1"
	ev := newEvents()
	opts := build.Options{ContextDir: ctxDir, Dockerfile: df, DockerfileName: "Dockerfile", Tags: []string{tag}, Push: true, Progress: ev}
	res, err := st.Build(t.Context(), opts)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, ev.logs.String())
	}
	// Two stages share the FROM; the context is not a step.
	if n := len(ev.ran()); n != 10 {
		t.Errorf("first build ran %d vertices, want 10 (9 steps and the context): %v", n, ev.ran())
	}

	ref, err := name.ParseReference(tag)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(ref, auth)
	if err != nil {
		t.Fatalf("pulling the pushed image: %v", err)
	}
	if err := validate.Image(img); err != nil {
		t.Errorf("validate.Image: %v", err)
	}
	if d, _ := img.Digest(); d.String() != res.Manifest.Digest.String() {
		t.Errorf("registry digest = %s, build said %s", d, res.Manifest.Digest)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	checks := []struct{ name, got, want string }{
		{"User", cfg.Config.User, "app"},
		{"WorkingDir", cfg.Config.WorkingDir, "/home/app"},
		{"Cmd", strings.Join(cfg.Config.Cmd, " "), "cat /opt/app/out.txt /home/app/made-by-run.txt"},
		{"Env", strings.Join(cfg.Config.Env, ";"), "PATH=" + testutil.BusyboxPATH + ";GREETING=hello world;LEVEL=2"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("config %s = %q, want %q", c.name, c.got, c.want)
		}
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	// busybox + RUN + COPY --from + COPY + RUN, and the empty layer of a
	// WORKDIR of an existing directory, as BuildKit makes it (conformance
	// case workdir_existing).
	if len(layers) != 6 {
		t.Errorf("image has %d layers, want 6", len(layers))
	}
	if len(cfg.RootFS.DiffIDs) != len(layers) {
		t.Errorf("%d diff_ids for %d layers", len(cfg.RootFS.DiffIDs), len(layers))
	}
	nonEmpty := 0
	for _, h := range cfg.History {
		if !h.EmptyLayer {
			nonEmpty++
		}
	}
	if nonEmpty != len(layers) {
		t.Errorf("history has %d non-empty entries for %d layers", nonEmpty, len(layers))
	}

	files := imageFiles(t, layers)
	want := []struct {
		path, content string
		uid, gid      int
	}{
		{"opt/app/out.txt", "compiled main with helper\n", 0, 0},
		{"etc/app/conf.txt", "conf", 1000, 1000},
		{"home/app/made-by-run.txt", "hello world from app:app in /home/app\n", 1000, 1000},
	}
	for _, w := range want {
		f, ok := files[w.path]
		if !ok {
			t.Errorf("image lacks %s", w.path)
			continue
		}
		if f.content != w.content || f.hdr.Uid != w.uid || f.hdr.Gid != w.gid {
			t.Errorf("%s = %q owned %d:%d, want %q owned %d:%d", w.path, f.content, f.hdr.Uid, f.hdr.Gid, w.content, w.uid, w.gid)
		}
	}
	// The sandbox's mountpoints must not leak into layers.
	built := imageFiles(t, layers[1:])
	for _, p := range []string{"unrelated.txt", "home/app/unrelated.txt", "proc/", "dev/", "sys/", "etc/hosts", "etc/resolv.conf"} {
		if _, ok := built[p]; ok {
			t.Errorf("a built layer has %s, which no step put there", p)
		}
	}

	// Built again: nothing runs, every step is cached, the image is the same but for its creation time.
	ev2 := newEvents()
	ociTar := filepath.Join(t.TempDir(), "app.tar")
	opts.Progress, opts.Push = ev2, false
	opts.Outputs = []output.Spec{{Type: "oci", Dest: ociTar}}
	res2, err := st.Build(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	checkOCILayout(t, ociTar, res2.Manifest.Digest.String(), tag)
	if ran := ev2.ran(); len(ran) != 0 {
		t.Errorf("second build ran %v, want nothing", ran)
	}
	cached := 0
	for _, kinds := range ev2.kinds {
		if len(kinds) == 1 && kinds[0] == solver.Cached {
			cached++
		}
	}
	if cached != 9 {
		t.Errorf("second build reported %d steps CACHED, want 9: %v", cached, ev2.kinds)
	}

	// And run, as `builder run` does.
	var out bytes.Buffer
	if err := st.Run(t.Context(), build.RunOptions{Image: tag, Stdout: &out, Stderr: &out}); err != nil {
		t.Fatalf("run: %v: %s", err, out.String())
	}
	if got, want := out.String(), "compiled main with helper\nhello world from app:app in /home/app\n"; got != want {
		t.Errorf("run printed %q, want %q", got, want)
	}
}

type imageFile struct {
	hdr     *tar.Header
	content string
}

// imageFiles flattens an image's layers into path -> file, applying
// whiteouts (".wh.NAME" removes NAME, ".wh..wh..opq" what older layers
// have in its directory).
func imageFiles(t *testing.T, layers []v1.Layer) map[string]imageFile {
	t.Helper()
	files := map[string]imageFile{}
	for _, l := range layers {
		rc, err := l.Uncompressed()
		if err != nil {
			t.Fatal(err)
		}
		tr := tar.NewReader(rc)
		for {
			hdr, err := tr.Next()
			if errors.Is(err, io.EOF) {
				break
			}
			if err != nil {
				t.Fatal(err)
			}
			dir, base := path.Split(hdr.Name)
			if gone, ok := strings.CutPrefix(base, ".wh."); ok {
				for p := range files {
					if (gone == ".wh..opq" && strings.HasPrefix(p, dir) && p != dir) || p == dir+gone || strings.HasPrefix(p, dir+gone+"/") {
						delete(files, p)
					}
				}
				continue
			}
			b, _ := io.ReadAll(tr)
			files[hdr.Name] = imageFile{hdr: hdr, content: string(b)}
		}
		rc.Close()
	}
	return files
}

// checkOCILayout unpacks an OCI layout tarball and checks it holds a valid
// image with the given manifest digest and name.
func checkOCILayout(t *testing.T, tarPath, wantDigest, wantName string) {
	t.Helper()
	lp := untarLayout(t, tarPath)
	idx, err := lp.ImageIndex()
	if err != nil {
		t.Fatal(err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		t.Fatal(err)
	}
	if len(im.Manifests) != 1 || im.Manifests[0].Digest.String() != wantDigest || im.Manifests[0].Annotations["io.containerd.image.name"] != wantName {
		t.Fatalf("index.json manifests = %+v, want one %s named %s", im.Manifests, wantDigest, wantName)
	}
	img, err := lp.Image(im.Manifests[0].Digest)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(img); err != nil {
		t.Errorf("validate.Image of the OCI layout: %v", err)
	}
}

// untarLayout unpacks an OCI image layout tarball into a temporary
// directory and opens it.
func untarLayout(t *testing.T, tarPath string) layout.Path {
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
		b, _ := io.ReadAll(tr)
		os.MkdirAll(filepath.Dir(p), 0o755)
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

// builtFiles reads back an image from the state dir's content store and
// returns the files of the layers the build added (all but the base's one).
func builtFiles(t *testing.T, st *build.State, manifest ocispec.Descriptor) map[string]imageFile {
	t.Helper()
	img, err := exporter.V1Image(st.Content, manifest)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	return imageFiles(t, layers[1:])
}
