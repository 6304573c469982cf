package build_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/internal/testutil"
	"github.com/builder-dev/builder/output"
	"github.com/builder-dev/builder/run"
	"github.com/builder-dev/builder/solver"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
)

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
	if err := run.Image(t.Context(), st, run.Options{Image: tag, Stdout: &out, Stderr: &out}); err != nil {
		t.Fatalf("run: %v: %s", err, out.String())
	}
	if got, want := out.String(), "compiled main with helper\nhello world from app:app in /home/app\n"; got != want {
		t.Errorf("run printed %q, want %q", got, want)
	}
}
