package build_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/klauspost/compress/gzip"

	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/executor"
	"github.com/builder-dev/builder/exporter"
	"github.com/builder-dev/builder/internal/testutil"
	"github.com/builder-dev/builder/internal/userns"
	"github.com/builder-dev/builder/run"
	"github.com/builder-dev/builder/solver"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/klauspost/compress/zstd"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/ulikunitz/xz"
)

// Helpers shared by the tests of this package: opening a state, writing
// contexts, running builds and reading back what they made.

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

func newEvents() *events { return &events{kinds: map[string][]solver.EventKind{}} }

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

// checkOCILayout unpacks an OCI layout tarball and checks it holds a valid
// image with the given manifest digest and name.
func checkOCILayout(t *testing.T, tarPath, wantDigest, wantName string) {
	t.Helper()
	lp := testutil.UntarLayout(t, tarPath)
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

// addBuild builds dockerfile ({{BASE}} is a busybox image) on st and
// returns the files of the layers the build added, and the events.
func addBuild(t *testing.T, st *build.State, base, ctxDir, dockerfile string) (map[string]imageFile, *events, error) {
	t.Helper()
	ev := newEvents()
	res, err := st.Build(t.Context(), build.Options{
		ContextDir: ctxDir, Dockerfile: []byte(strings.ReplaceAll(dockerfile, "{{BASE}}", base)),
		DockerfileName: "Dockerfile", Progress: ev,
	})
	if err != nil {
		return nil, ev, err
	}
	return builtFiles(t, st, res.Manifest), ev, nil
}

func busyboxBase(t *testing.T) string {
	t.Helper()
	testutil.RequiresRoot(t)
	reg := testutil.InProcessRegistry(t)
	base := reg + "/busybox:1"
	testutil.PushImage(t, testutil.BusyboxImage(t), base)
	return base
}

// checkRebuildCached builds again and fails unless nothing ran.
func checkRebuildCached(t *testing.T, st *build.State, base, ctxDir, dockerfile string) {
	t.Helper()
	_, ev, err := addBuild(t, st, base, ctxDir, dockerfile)
	if err != nil {
		t.Fatalf("second build: %v", err)
	}
	if ran := ev.ran(); len(ran) != 0 {
		t.Errorf("second build ran %v, want everything cached", ran)
	}
}

type wantFile struct {
	path, content string
	mode          int64
	uid, gid      int
	link          string
	typ           byte
}

func checkFiles(t *testing.T, files map[string]imageFile, want []wantFile) {
	t.Helper()
	for _, w := range want {
		f, ok := files[w.path]
		if !ok {
			t.Errorf("image lacks %s", w.path)
			continue
		}
		typ := w.typ
		if typ == 0 {
			typ = tar.TypeReg
		}
		h := f.hdr
		if h.Typeflag != typ || f.content != w.content || h.Mode&0o7777 != w.mode || h.Uid != w.uid || h.Gid != w.gid || h.Linkname != w.link {
			t.Errorf("%s = type %c %q mode %o owner %d:%d link %q; want type %c %q mode %o owner %d:%d link %q",
				w.path, h.Typeflag, f.content, h.Mode&0o7777, h.Uid, h.Gid, h.Linkname,
				typ, w.content, w.mode, w.uid, w.gid, w.link)
		}
	}
}

// addTar makes a tar with a directory, a file owned by 1000:1000, a
// symlink and a hard link, all with mtime tarTime.
func addTar(t *testing.T, prefix string) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, h := range []*tar.Header{
		{Name: prefix + "/", Typeflag: tar.TypeDir, Mode: 0o750},
		{Name: prefix + "/data.txt", Typeflag: tar.TypeReg, Mode: 0o640, Uid: 1000, Gid: 1000, Size: int64(len(prefix))},
		{Name: prefix + "/link", Typeflag: tar.TypeSymlink, Linkname: "data.txt", Mode: 0o777},
		{Name: prefix + "/hard", Typeflag: tar.TypeLink, Linkname: prefix + "/data.txt"},
	} {
		h.ModTime = tarTime
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			io.WriteString(tw, prefix)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

func compressAs(t *testing.T, kind string, b []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	var w io.WriteCloser
	var err error
	switch kind {
	case "gz":
		w = gzip.NewWriter(&buf)
	case "xz":
		w, err = xz.NewWriter(&buf)
	case "zst":
		w, err = zstd.NewWriter(&buf)
	case "bz2":
		bin := testutil.RequireTool(t, "bzip2", "bzip2")
		cmd := exec.Command(bin, "-c")
		cmd.Stdin = bytes.NewReader(b)
		out, err := cmd.Output()
		if err != nil {
			t.Fatal(err)
		}
		return out
	default:
		return b
	}
	if err != nil {
		t.Fatal(err)
	}
	w.Write(b)
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// checkNothingLeft fails if a mount, a scratch dir or an unrecorded
// snapshot remains under the state dir root.
func checkNothingLeft(t *testing.T, root string) {
	t.Helper()
	mounts, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(mounts), root) {
		t.Errorf("a mount under %s remains:\n%s", root, mounts)
	}
	if entries, _ := os.ReadDir(filepath.Join(root, "tmp")); len(entries) > 0 {
		t.Errorf("scratch dirs remain in %s/tmp: %v", root, entries)
	}
	st2, err := os.ReadDir(filepath.Join(root, "snapshots"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range st2 {
		if _, err := os.Stat(filepath.Join(root, "snapshots", e.Name(), "work")); err == nil {
			t.Errorf("snapshot %s was left prepared (its work dir remains)", e.Name())
		}
	}
}

// runBuild builds dockerfile ({{BASE}} is a busybox image) on st with opts
// and returns the files its own layers add, and the events.
func runBuild(t *testing.T, st *build.State, base, ctxDir, dockerfile string, opts build.Options) (map[string]imageFile, *events, *build.Result, error) {
	t.Helper()
	ev := newEvents()
	opts.ContextDir = ctxDir
	opts.Dockerfile = []byte(strings.ReplaceAll(dockerfile, "{{BASE}}", base))
	opts.DockerfileName = "Dockerfile"
	opts.Progress = ev
	res, err := st.Build(t.Context(), opts)
	if err != nil {
		return nil, ev, nil, err
	}
	return builtFiles(t, st, res.Manifest), ev, res, nil
}

// mustBuild is runBuild that fails the test on a build error.
func mustBuild(t *testing.T, st *build.State, base, ctxDir, dockerfile string, opts build.Options) (map[string]imageFile, *events) {
	t.Helper()
	files, ev, _, err := runBuild(t, st, base, ctxDir, dockerfile, opts)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, ev.logs.String())
	}
	return files, ev
}

// checkContent fails unless the image file p holds want (spaces trimmed).
func checkContent(t *testing.T, files map[string]imageFile, p, want string) {
	t.Helper()
	f, ok := files[p]
	if !ok {
		t.Errorf("%s is not in the image's layers", p)
		return
	}
	if got := strings.TrimSpace(f.content); got != want {
		t.Errorf("%s = %q, want %q", p, got, want)
	}
}

// runImage runs an image of st, as `builder run` does, and returns what it
// printed. Run closes st (a command may run for long without holding the
// state dir): open it again to go on.
func runImage(t *testing.T, st *build.State, image string, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	if err := run.Image(t.Context(), st, run.Options{Image: image, Args: args, Stdout: &out, Stderr: &out}); err != nil {
		t.Fatalf("run %s: %v: %s", image, err, out.String())
	}
	return out.String()
}

func pull(t *testing.T, ref string) v1.Image {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(r)
	if err != nil {
		t.Fatalf("pulling %s: %v", ref, err)
	}
	return img
}

// podmanLoadWith is podmanLoad with podman's storage driver: vfs (a copy
// per layer, works anywhere) or overlay (what most hosts use).
func podmanLoadWith(t *testing.T, driver, archive, tag, want string) {
	t.Helper()
	podman := testutil.RequireTool(t, "podman", "podman")
	runc := testutil.RequireTool(t, "runc", "runc")
	tmp := t.TempDir()
	args := []string{
		"--root", filepath.Join(tmp, "root"), "--runroot", filepath.Join(tmp, "run"),
		"--storage-driver", driver, "--runtime", runc, "--cgroup-manager", "cgroupfs",
		"--events-backend", "none", "--tmpdir", filepath.Join(tmp, "tmp"),
	}
	podmanCmd := func(extra ...string) string {
		t.Helper()
		cmd := exec.CommandContext(t.Context(), podman, append(append([]string(nil), args...), extra...)...)
		cmd.Env = append(os.Environ(), "CONTAINERS_CONF="+filepath.Join(tmp, "containers.conf"), "XDG_RUNTIME_DIR="+filepath.Join(tmp, "xdg"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("podman %s: %v\n%s", strings.Join(extra, " "), err, out)
		}
		return string(out)
	}
	if err := os.WriteFile(filepath.Join(tmp, "containers.conf"), []byte("[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"none\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Leaves no containers, images or storage layers behind.
		exec.Command(podman, append(append([]string(nil), args...), "system", "reset", "--force")...).Run()
	})
	podmanCmd("load", "-i", archive)
	inspect := podmanCmd("image", "inspect", "--format", "{{.Os}}/{{.Architecture}} {{.RepoTags}}", tag)
	if !strings.Contains(inspect, "linux/") || !strings.Contains(inspect, tag) {
		t.Errorf("podman image inspect = %q, want a linux image tagged %s", inspect, tag)
	}
	// Without CAP_SYS_RESOURCE (as here) runc cannot set podman's default
	// limits (the maximum): ask for low ones.
	run := []string{"run", "--rm", "--network", "none", "--ulimit", "nofile=1024:1024", "--ulimit", "nproc=1024:1024"}
	if got := podmanCmd(append(run, tag)...); got != want {
		t.Errorf("podman run %s printed %q, want %q", tag, got, want)
	}
}
