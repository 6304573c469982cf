package build_test

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/gc"
	"github.com/builder-dev/builder/run"
	"github.com/builder-dev/builder/source"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// runPlatform runs an image of the state dir root for platform p (nil: the
// host's) and returns its output; it opens the state itself, as `builder
// run` does, since a run closes it.
func runPlatform(t *testing.T, root, image string, p *ocispec.Platform, args ...string) string {
	t.Helper()
	var out bytes.Buffer
	if err := run.Image(t.Context(), openState(t, root), run.Options{Image: image, Args: args, Stdout: &out, Stderr: &out, Platform: p}); err != nil {
		t.Fatalf("run --platform %v %s: %v: %s", p, image, err, out.String())
	}
	return strings.TrimSpace(out.String())
}

// TestTwoPlatformsStore: a two-platform build with -t keeps the index and
// both images in the local store: `images` lists its platforms, `run`
// takes the host's image or, with --platform, the arm64 one under
// emulation; a later build FROM it takes its platform's image from the
// store; a push from the store sends the index; prune keeps, and after
// rmi frees, both platforms' snapshots and blobs.
func TestTwoPlatformsStore(t *testing.T) {
	base := busyboxIndexBase(t)
	reg, _, _ := strings.Cut(base, "/")
	root := t.TempDir()
	st := openState(t, root)
	amd64 := ocispec.Platform{OS: "linux", Architecture: "amd64"}
	arm64 := ocispec.Platform{OS: "linux", Architecture: "arm64"}
	ev := newEvents()
	res, err := st.Build(t.Context(), build.Options{
		ContextDir: writeContext(t, nil), Dockerfile: []byte("FROM " + base + "\nRUN uname -m > /m\n"), DockerfileName: "Dockerfile",
		Progress: ev, Tags: []string{"app"}, Platforms: []ocispec.Platform{amd64, arm64},
	})
	if err != nil {
		t.Fatalf("build: %v\n%s", err, ev.logs.String())
	}
	if res.Manifest.MediaType != ocispec.MediaTypeImageIndex || !slices.Equal(res.Names, []string{"app:latest"}) {
		t.Fatalf("result %s named %v, want an image index named app:latest", res.Manifest.MediaType, res.Names)
	}
	rec, err := st.DB.Image("app:latest")
	if err != nil || rec.Manifest.Digest != res.Manifest.Digest || len(rec.Platforms) != 2 {
		t.Fatalf("stored app:latest = %+v, %v; want the index %s with 2 platforms", rec, err, res.Manifest.Digest)
	}
	var list bytes.Buffer
	if err := st.Images.WriteList(&list); err != nil || !strings.Contains(list.String(), "linux/amd64,linux/arm64") {
		t.Errorf("images: %v\n%s\nwant app:latest with linux/amd64,linux/arm64", err, list.String())
	}
	st.Close()

	if got := runPlatform(t, root, "app", nil, "cat", "/m"); got != "x86_64" {
		t.Errorf("run app cat /m = %q, want the host's image (x86_64)", got)
	}
	if got := runPlatform(t, root, "app", &arm64, "uname", "-m"); got != "aarch64" {
		t.Errorf("run --platform linux/arm64 app uname -m = %q, want aarch64", got)
	}
	var out bytes.Buffer
	err = run.Image(t.Context(), openState(t, root), run.Options{Image: "app", Args: []string{"true"}, Stdout: &out, Stderr: &out, Platform: &ocispec.Platform{OS: "linux", Architecture: "s390x"}})
	if err == nil || !strings.Contains(err.Error(), "linux/amd64, linux/arm64") {
		t.Errorf("run --platform linux/s390x app: %v, want an error listing the image's platforms", err)
	}

	// "app" is docker.io/library/app: only the local store has it.
	st = openState(t, root)
	ev = newEvents()
	res2, err := st.Build(t.Context(), build.Options{
		ContextDir: writeContext(t, nil), Dockerfile: []byte("FROM app\nRUN cp /m /n\n"), DockerfileName: "Dockerfile",
		Progress: ev, Platforms: []ocispec.Platform{arm64},
	})
	if err != nil {
		t.Fatalf("build FROM app for arm64: %v\n%s", err, ev.logs.String())
	}
	checkContent(t, builtFiles(t, st, res2.Manifest), "n", "aarch64")

	pushed := reg + "/app:fromstore"
	if err := st.Images.Tag("app", pushed); err != nil {
		t.Fatal(err)
	}
	if err := st.Images.Push(t.Context(), pushed, source.Keychain); err != nil {
		t.Fatalf("push %s from the store: %v", pushed, err)
	}
	pushedIndex(t, pushed, res.Manifest.Digest)
	if err := st.Images.Remove(pushed); err != nil {
		t.Fatal(err)
	}

	// builder save --format oci, then load into another state dir: the
	// index and both platforms come back.
	tarPath := filepath.Join(t.TempDir(), "app.tar")
	if err := st.Images.SaveFile(tarPath, "oci", "app"); err != nil {
		t.Fatalf("save --format oci app: %v", err)
	}
	root2 := t.TempDir()
	st2 := openState(t, root2)
	f, err := os.Open(tarPath)
	if err != nil {
		t.Fatal(err)
	}
	loaded, err := st2.Images.Load(t.Context(), f)
	f.Close()
	if err != nil || len(loaded) != 1 || loaded[0].Manifest.Digest != res.Manifest.Digest || len(loaded[0].Platforms) != 2 {
		t.Fatalf("load of the saved index: %+v, %v; want the index %s with 2 platforms", loaded, err, res.Manifest.Digest)
	}
	st2.Close()
	if got := runPlatform(t, root2, "app", &arm64, "cat", "/m"); got != "aarch64" {
		t.Errorf("loaded app: run --platform linux/arm64 cat /m = %q", got)
	}

	checkPlatformsKept(t, st, rec.Platforms[0].Snapshot, rec.Platforms[1].Snapshot, true)
	if _, err := st.Prune(t.Context(), gc.PruneOptions{All: true}); err != nil {
		t.Fatal(err)
	}
	for _, d := range []digest.Digest{res.Manifest.Digest, rec.Platforms[0].Manifest.Digest, rec.Platforms[1].Manifest.Digest} {
		if !st.Content.Exists(d) {
			t.Errorf("prune --all removed %s of the stored index", d)
		}
	}
	st.Close()
	if got := runPlatform(t, root, "app", &arm64, "cat", "/m"); got != "aarch64" {
		t.Errorf("after prune: run --platform linux/arm64 app cat /m = %q", got)
	}
	st = openState(t, root)
	if err := st.Images.Remove("app"); err != nil {
		t.Fatal(err)
	}
	checkPlatformsKept(t, st, rec.Platforms[0].Snapshot, rec.Platforms[1].Snapshot, false)
	if _, err := st.Prune(t.Context(), gc.PruneOptions{All: true}); err != nil {
		t.Fatal(err)
	}
	if st.Content.Exists(res.Manifest.Digest) || st.Snapshots.Exists(rec.Platforms[1].Snapshot) {
		t.Errorf("after rmi and prune --all, the index or the arm64 snapshot is left")
	}
}

// checkPlatformsKept checks that du counts both platforms' snapshots as in
// use (inUse) or as reclaimable.
func checkPlatformsKept(t *testing.T, st *build.State, a, b string, inUse bool) {
	t.Helper()
	du, err := st.DiskUsage(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	seen := 0
	for _, r := range du.Records {
		if r.ID == a || r.ID == b {
			seen++
			if r.InUse != inUse {
				t.Errorf("du: snapshot %s in use = %v, want %v", r.ID, r.InUse, inUse)
			}
		}
	}
	if seen != 2 {
		t.Errorf("du lists %d of the two platforms' snapshots", seen)
	}
}
