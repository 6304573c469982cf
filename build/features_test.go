package build_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/exporter"
	"github.com/builder-dev/builder/internal/testutil"
	"github.com/builder-dev/builder/output"
)

// buildImage builds a Dockerfile (with {{BASE}} standing for a busybox
// image) and returns the result and the files its own layers add.
func buildImage(t *testing.T, dockerfile string, files map[string]string, opts build.Options) (*build.Result, map[string]imageFile) {
	t.Helper()
	testutil.RequiresRoot(t)
	reg := testutil.InProcessRegistry(t)
	base := reg + "/busybox:1"
	testutil.PushImage(t, testutil.BusyboxImage(t), base)
	st := openState(t, t.TempDir())
	ev := newEvents()
	opts.ContextDir = writeContext(t, files)
	opts.Dockerfile = []byte(strings.ReplaceAll(dockerfile, "{{BASE}}", base))
	opts.Progress = ev
	res, err := st.Build(t.Context(), opts)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, ev.logs.String())
	}
	return res, builtFiles(t, st, res.Manifest)
}

func TestHeredocsAndCopyFlags(t *testing.T) {
	df := `FROM {{BASE}}
ARG NAME=world
RUN <<EOF
echo "plain heredoc for $NAME" > /plain.txt
EOF
RUN <<EOF
#!/bin/sh
echo "script run as $0" > /script.txt
EOF
RUN <<-EOF
	echo chomped > /chomp.txt
	EOF
RUN cat <<A >/two.txt && cat <<B >>/two.txt
first
A
second
B
COPY <<EOF /etc/greeting
hello $NAME
EOF
COPY <<'EOF' /etc/literal
hello $NAME
EOF
COPY --chmod=a=rX,u+w tool.sh app/ /opt/x/
COPY --chmod=0640 tool.sh /opt/octal.sh
COPY --exclude=*.log --exclude=tmp app /opt/app
COPY --parents src/a/one.txt src/b/two.txt /opt/p/
COPY --parents ./src/./b/two.txt /opt/pivot/
COPY --link tool.sh /opt/linked.sh
RUN echo "proxy=$HTTP_PROXY" > /proxy.txt
`
	files := map[string]string{
		"tool.sh": "#!/bin/sh\n", "app/main.txt": "main", "app/debug.log": "log", "app/tmp/x": "x",
		"src/a/one.txt": "1", "src/b/two.txt": "2",
	}
	res, got := buildImage(t, df, files, build.Options{BuildArgs: map[string]string{"HTTP_PROXY": "http://proxy.example:3128"}})
	want := []struct {
		path, content string
		mode          int64
	}{
		{"plain.txt", "plain heredoc for world\n", 0o644},
		{"script.txt", "script run as /dev/pipes/EOF\n", 0o644},
		{"chomp.txt", "chomped\n", 0o644},
		{"two.txt", "first\nsecond\n", 0o644},
		{"etc/greeting", "hello world\n", 0o644},
		{"etc/literal", "hello $NAME\n", 0o644},
		{"opt/x/tool.sh", "#!/bin/sh\n", 0o644},
		{"opt/x/main.txt", "main", 0o644},
		{"opt/x/tmp/", "", 0o755},
		{"opt/octal.sh", "#!/bin/sh\n", 0o640},
		{"opt/app/main.txt", "main", 0o644},
		{"opt/p/src/a/one.txt", "1", 0o644},
		{"opt/p/src/b/two.txt", "2", 0o644},
		{"opt/pivot/b/two.txt", "2", 0o644},
		{"opt/linked.sh", "#!/bin/sh\n", 0o644},
		{"proxy.txt", "proxy=http://proxy.example:3128\n", 0o644},
	}
	for _, w := range want {
		f, ok := got[w.path]
		if !ok {
			t.Errorf("image lacks %s", w.path)
			continue
		}
		if f.content != w.content || f.hdr.Mode&0o7777 != w.mode {
			t.Errorf("%s = %q mode %o, want %q mode %o", w.path, f.content, f.hdr.Mode&0o7777, w.content, w.mode)
		}
	}
	for _, p := range []string{"opt/app/debug.log", "opt/app/tmp/", "opt/app/tmp/x", "dev/pipes/EOF", "dev/"} {
		if _, ok := got[p]; ok {
			t.Errorf("image has %s, which should have been left out", p)
		}
	}
	if strings.Contains(string(res.Config), "proxy.example") {
		t.Errorf("the proxy build arg leaked into the config or history: %s", res.Config)
	}
}

func TestOnbuildContextsAndIgnoreFiles(t *testing.T) {
	testutil.RequiresRoot(t)
	reg := testutil.InProcessRegistry(t)
	base := reg + "/busybox:1"
	testutil.PushImage(t, testutil.BusyboxImage(t), base)
	st := openState(t, t.TempDir())

	// An image with ONBUILD triggers, pushed to the registry.
	parent := writeContext(t, map[string]string{"Dockerfile": "FROM " + base + "\nONBUILD RUN echo triggered > /onbuild.txt\nONBUILD COPY child.txt /from-child.txt\n"})
	parentTag := reg + "/onbuild:1"
	if _, err := st.Build(t.Context(), build.Options{ContextDir: parent, Dockerfile: []byte("FROM " + base + "\nONBUILD RUN echo triggered > /onbuild.txt\nONBUILD COPY child.txt /from-child.txt\n"), Tags: []string{parentTag}, Push: true}); err != nil {
		t.Fatal(err)
	}

	extra := writeContext(t, map[string]string{"extra.txt": "from a named context"})
	ctxDir := writeContext(t, map[string]string{
		"child.txt": "child", "keep.txt": "keep", "secret.txt": "ignored by app.Dockerfile.dockerignore",
		"other.txt":                   "ignored by .dockerignore only",
		".dockerignore":               "other.txt\n",
		"app.Dockerfile.dockerignore": "secret.txt\n",
	})
	df := "FROM " + parentTag + "\nCOPY --from=extra extra.txt /extra.txt\nCOPY --from=img /bin/busybox /img-busybox\nCOPY *.txt /ctx/\n"
	var warnings []string
	res, err := st.Build(t.Context(), build.Options{
		ContextDir: ctxDir, Dockerfile: []byte(df), DockerfilePath: ctxDir + "/app.Dockerfile",
		Contexts:  map[string]string{"extra": extra, "img": "docker-image://" + base},
		BuildArgs: map[string]string{"UNUSED": "1"},
		Warn:      func(w string) { warnings = append(warnings, w) },
	})
	if err != nil {
		t.Fatal(err)
	}
	img, err := exporter.V1Image(st.Content, res.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	files := imageFiles(t, layers[1:])
	for p, want := range map[string]string{
		"onbuild.txt": "triggered\n", "from-child.txt": "child", "extra.txt": "from a named context",
		"ctx/child.txt": "child", "ctx/keep.txt": "keep", "ctx/other.txt": "ignored by .dockerignore only",
	} {
		if f, ok := files[p]; !ok || f.content != want {
			t.Errorf("%s = %q (present %v), want %q", p, f.content, ok, want)
		}
	}
	if _, ok := files["ctx/secret.txt"]; ok {
		t.Error("ctx/secret.txt was copied although app.Dockerfile.dockerignore excludes it")
	}
	if _, ok := files["img-busybox"]; !ok {
		t.Error("COPY --from a docker-image:// context copied nothing")
	}
	cfg, _ := img.ConfigFile()
	if len(cfg.Config.OnBuild) != 0 {
		t.Errorf("OnBuild = %v, want the triggers cleared once run", cfg.Config.OnBuild)
	}
	// Other warnings may come from the host (no private network here).
	var argWarnings []string
	for _, w := range warnings {
		if strings.Contains(w, "build arg") {
			argWarnings = append(argWarnings, w)
		}
	}
	if len(argWarnings) != 1 || !strings.Contains(argWarnings[0], "UNUSED") {
		t.Errorf("warnings = %q, want one about build args, naming the unused one", warnings)
	}
}

// TestOCILayoutBuildContext builds FROM an image given as an OCI layout
// directory (--build-context NAME=oci-layout://DIR), in a state dir that
// has never seen it.
func TestOCILayoutBuildContext(t *testing.T) {
	testutil.RequiresRoot(t)
	reg := testutil.InProcessRegistry(t)
	base := reg + "/busybox:1"
	testutil.PushImage(t, testutil.BusyboxImage(t), base)
	first := openState(t, t.TempDir())
	layout := filepath.Join(t.TempDir(), "layout")
	res, err := first.Build(t.Context(), build.Options{
		ContextDir: t.TempDir(), Dockerfile: []byte("FROM " + base + "\nRUN echo from-layout > /marker\n"),
		Outputs: []output.Spec{{Type: "oci", Dest: layout, Directory: true}},
	})
	if err != nil {
		t.Fatal(err)
	}
	second := openState(t, t.TempDir())
	out, err := second.Build(t.Context(), build.Options{
		ContextDir: t.TempDir(),
		Dockerfile: []byte("FROM base\nRUN cat /marker > /copied\nCOPY --from=pinned /marker /pinned\n"),
		Contexts: map[string]string{
			"base":   "oci-layout://" + layout,
			"pinned": "oci-layout://" + layout + "@" + res.Manifest.Digest.String(),
		},
		Tags: []string{"from-layout"},
	})
	if err != nil {
		t.Fatal(err)
	}
	img, err := exporter.V1Image(second.Content, out.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	files := imageFiles(t, layers)
	for _, p := range []string{"copied", "pinned"} {
		if f, ok := files[p]; !ok || f.content != "from-layout\n" {
			t.Errorf("%s = %q (present %v), want the layout image's marker", p, f.content, ok)
		}
	}
	if _, err := second.Build(t.Context(), build.Options{ContextDir: t.TempDir(), Dockerfile: []byte("FROM base\n"),
		Contexts: map[string]string{"base": "oci-layout://" + layout + "@sha256:" + strings.Repeat("0", 64)}}); err == nil || !strings.Contains(err.Error(), "has no image") {
		t.Errorf("a digest the layout lacks: err = %v", err)
	}
}
