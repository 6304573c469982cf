package build_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/cache/remote"
	"github.com/builder-dev/builder/internal/testutil"
	"github.com/google/go-containerregistry/pkg/name"
	ggcrremote "github.com/google/go-containerregistry/pkg/v1/remote"
)

// The step counts its runs in its cache mount and says how warm the
// cache was; a big file written once and a small directory stand for a
// package manager's downloads and index. RUN_ID makes each build run it.
const cacheMountDockerfile = `FROM {{BASE}}
ARG RUN_ID
RUN --mount=type=cache,target=/cache,id=pkgs sh -c 'n=$(cat /cache/count 2>/dev/null || echo 0); echo "run=$RUN_ID warm=$n" > /result; echo $((n+1)) > /cache/count; mkdir -p /cache/big /cache/small; [ -f /cache/big/blob ] || head -c 6000000 /dev/urandom > /cache/big/blob; [ -f /cache/small/s ] || echo s > /cache/small/s'
`

// cacheMountParts returns the part blobs of each cache mount (by id) in
// the cache config at ref.
func cacheMountParts(t *testing.T, ref string) map[string][]string {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	img, err := ggcrremote.Image(r)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := img.RawConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		CacheMounts []struct {
			ID    string
			Parts []struct {
				Path string
				Blob struct{ Digest string }
			}
		} `json:"cacheMounts"`
	}
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	out := map[string][]string{}
	for _, m := range cfg.CacheMounts {
		for _, p := range m.Parts {
			out[m.ID] = append(out[m.ID], p.Blob.Digest)
		}
	}
	return out
}

// cacheOptions are build options with the --cache-to values to and the
// --cache-from values from.
func cacheOptions(t *testing.T, to, from []string) build.Options {
	t.Helper()
	var opt build.Options
	for _, s := range to {
		c, err := remote.ParseSpec(s, true)
		if err != nil {
			t.Fatal(err)
		}
		opt.CacheTo = append(opt.CacheTo, c)
	}
	for _, s := range from {
		c, err := remote.ParseSpec(s, false)
		if err != nil {
			t.Fatal(err)
		}
		opt.CacheFrom = append(opt.CacheFrom, c)
	}
	return opt
}

func cacheMountBuild(t *testing.T, st *build.State, base, runID string, to, from []string) (string, []string) {
	t.Helper()
	opt := cacheOptions(t, to, from)
	var warnings []string
	opt.Warn = func(w string) { warnings = append(warnings, w) }
	opt.BuildArgs = map[string]string{"RUN_ID": runID}
	files, _ := mustBuild(t, st, base, writeContext(t, nil), cacheMountDockerfile, opt)
	return strings.TrimSpace(files["result"].content), warnings
}

// TestCacheMountsAcrossMachines: runner A exports its cache with its
// cache mount; runner B, on an empty state dir, finds the mount warm,
// and its export uploads only the part of the mount that changed.
// Without cache-mounts=true nothing of the mount is exported, and a
// cache with mounts still imports as a layer cache.
func TestCacheMountsAcrossMachines(t *testing.T) {
	testutil.RequiresRoot(t)
	reg := newCountingRegistry(t)
	base := reg.addr + "/busybox:1"
	testutil.PushImage(t, testutil.BusyboxImage(t), base)
	ref := reg.addr + "/cache:mounts"
	to := "type=registry,ref=" + ref + ",mode=max,cache-mounts=true"

	got, _ := cacheMountBuild(t, openState(t, t.TempDir()), base, "a", []string{to}, nil)
	if got != "run=a warm=0" {
		t.Fatalf("runner A: %q, want a cold cache", got)
	}
	first := cacheMountParts(t, ref)["pkgs"]
	if len(first) != 3 {
		t.Fatalf("runner A exported parts %v, want 3 (root, big, small)", first)
	}

	// Runner B: its step runs (another RUN_ID), with A's cache mount.
	reg.reset()
	stB := openState(t, t.TempDir())
	got, warnings := cacheMountBuild(t, stB, base, "b", []string{to}, []string{"type=registry,ref=" + ref})
	if got != "run=b warm=1" {
		t.Fatalf("runner B: %q (warnings %q), want the cache A left", got, warnings)
	}
	second := cacheMountParts(t, ref)["pkgs"]
	reg.mu.Lock()
	puts, uploaded := reg.puts, reg.bytes
	reg.mu.Unlock()
	var mountPuts []string
	for _, d := range puts {
		for _, p := range append(first, second...) {
			if d == p {
				mountPuts = append(mountPuts, d)
				break
			}
		}
	}
	t.Logf("runner B's export: %d blob PUTs (%d of the cache mount), %d bytes uploaded", len(puts), len(mountPuts), uploaded)
	if len(mountPuts) != 1 || mountPuts[0] != second[0] || second[0] == first[0] {
		t.Errorf("cache mount parts uploaded %v, want only the changed root part %s", mountPuts, second[0])
	}
	if second[1] != first[1] || second[2] != first[2] {
		t.Errorf("unchanged parts changed: %v, then %v", first, second)
	}
	if uploaded > 1<<20 {
		t.Errorf("runner B uploaded %d bytes; the 6 MB file did not change", uploaded)
	}

	// Runner C imports the same cache without exporting mounts: its own
	// export has none, and its step runs on a cold cache only if its
	// state has none (it restores B's).
	plain := reg.addr + "/cache:plain"
	got, _ = cacheMountBuild(t, openState(t, t.TempDir()), base, "c", []string{"type=registry,mode=max,ref=" + plain}, []string{"type=registry,ref=" + ref})
	if got != "run=c warm=2" {
		t.Errorf("runner C: %q, want the cache B left", got)
	}
	if parts := cacheMountParts(t, plain); len(parts) != 0 {
		t.Errorf("an export without cache-mounts=true has cache mounts %v", parts)
	}
	// The layer cache of a config with mounts: same RUN_ID as B, cached.
	st := openState(t, t.TempDir())
	_, ev := mustBuild(t, st, base, writeContext(t, nil), cacheMountDockerfile, build.Options{
		BuildArgs: map[string]string{"RUN_ID": "b"}, CacheFrom: []remote.Spec{{Type: remote.TypeRegistry, Ref: ref}},
	})
	if ran := ev.ran(); len(ran) != 0 {
		t.Errorf("a build B already made ran %v with B's cache", ran)
	}
}

// TestCacheMountsLocal: the same through an OCI layout directory
// (--cache-to type=local,dest=DIR,cache-mounts=true, --cache-from
// type=local,src=DIR).
func TestCacheMountsLocal(t *testing.T) {
	base := busyboxBase(t)
	dir := filepath.Join(t.TempDir(), "cache")
	if got, _ := cacheMountBuild(t, openState(t, t.TempDir()), base, "a", []string{"type=local,mode=max,cache-mounts=true,dest=" + dir}, nil); got != "run=a warm=0" {
		t.Fatalf("runner A: %q, want a cold cache", got)
	}
	got, warnings := cacheMountBuild(t, openState(t, t.TempDir()), base, "b", nil, []string{"type=local,src=" + dir})
	if got != "run=b warm=1" {
		t.Errorf("runner B: %q (warnings %q), want the cache A left", got, warnings)
	}
}

// The Go build of a small program with GOCACHE in a cache mount; the Go
// toolchain is the host's, as a named build context.
const goCacheDockerfile = `FROM {{BASE}}
COPY --from=go / /usr/local/go
COPY main.go go.mod /src/
ARG RUN_ID
ENV PATH=/usr/local/go/bin:/bin CGO_ENABLED=0 GOTOOLCHAIN=local GOPROXY=off GOCACHE=/root/.cache/go-build HOME=/root
RUN --mount=type=cache,target=/root/.cache/go-build cd /src && time -o /t go build -o /prog . && echo "run=$RUN_ID go build $(head -1 /t)" > /result && rm /t
`

// TestCacheMountsGoBench (BUILDER_BENCH_CACHEMOUNTS=N runs) measures a
// second runner's build with GOCACHE in a cache mount: restored from the
// registry cache (cache-mounts=true) against cold (the same layer cache
// without mounts). Both import the layer cache and run the Go step.
func TestCacheMountsGoBench(t *testing.T) {
	runs, _ := strconv.Atoi(os.Getenv("BUILDER_BENCH_CACHEMOUNTS"))
	if runs <= 0 {
		t.Skip("BUILDER_BENCH_CACHEMOUNTS=N runs the benchmark N times")
	}
	testutil.RequiresRoot(t)
	goroot, err := exec.Command("go", "env", "GOROOT").Output()
	if err != nil {
		t.Skip("no Go on the host")
	}
	reg := newCountingRegistry(t)
	base := reg.addr + "/busybox:1"
	testutil.PushImage(t, testutil.BusyboxImage(t), base)
	ctxDir := writeContext(t, map[string]string{
		"go.mod":  "module prog\n\ngo 1.22\n",
		"main.go": "package main\n\nimport (\n\t\"fmt\"\n\t\"strconv\"\n)\n\nfunc main() { fmt.Println(\"ok\", strconv.Itoa(42)) }\n",
	})
	warmRef, coldRef := reg.addr+"/cache:go-mounts", reg.addr+"/cache:go-plain"
	goBuild := func(runID string, to, from []string) (time.Duration, string) {
		opt := cacheOptions(t, to, from)
		opt.BuildArgs, opt.Contexts = map[string]string{"RUN_ID": runID}, map[string]string{"go": strings.TrimSpace(string(goroot))}
		start := time.Now()
		files, _ := mustBuild(t, openState(t, t.TempDir()), base, ctxDir, goCacheDockerfile, opt)
		return time.Since(start), strings.TrimSpace(files["result"].content)
	}
	took, res := goBuild("a", []string{"type=registry,mode=max,cache-mounts=true,ref=" + warmRef, "type=registry,mode=max,ref=" + coldRef}, nil)
	t.Logf("runner A (cold, exports): %v, %s", took, res)
	var cold, warm []time.Duration
	for i := range runs {
		took, res := goBuild(fmt.Sprintf("cold%d", i), nil, []string{"type=registry,ref=" + coldRef})
		cold = append(cold, took)
		t.Logf("cold %d: %v, %s, load %s", i, took, res, loadavg())
		took, res = goBuild(fmt.Sprintf("warm%d", i), nil, []string{"type=registry,ref=" + warmRef})
		warm = append(warm, took)
		t.Logf("warm %d: %v, %s, load %s", i, took, res, loadavg())
	}
	slices.Sort(cold)
	slices.Sort(warm)
	t.Logf("median build: cold %v, warm (restored cache mount) %v, ratio %.2f", cold[runs/2], warm[runs/2], float64(warm[runs/2])/float64(cold[runs/2]))
}

func loadavg() string {
	b, _ := os.ReadFile("/proc/loadavg")
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}
