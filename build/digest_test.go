package build_test

import (
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/cache/remote"
	"github.com/google/go-containerregistry/pkg/registry"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// recordingRegistry is go-containerregistry's in-process registry that
// counts the requests it gets by "METHOD PATH".
type recordingRegistry struct {
	addr string
	mu   sync.Mutex
	reqs map[string]int
}

func newRecordingRegistry(t *testing.T) *recordingRegistry {
	r := &recordingRegistry{reqs: map[string]int{}}
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.mu.Lock()
		r.reqs[req.Method+" "+req.URL.Path]++
		r.mu.Unlock()
		h.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	r.addr = strings.TrimPrefix(srv.URL, "http://")
	return r
}

// take returns the requests counted since the last take and forgets them.
func (r *recordingRegistry) take() map[string]int {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := r.reqs
	r.reqs = map[string]int{}
	return out
}

const digestDockerfile = `FROM {{BASE}}
ENV APP=demo
RUN echo built > /built && date +%s%N > /when
COPY src.txt /src/
WORKDIR /src
LABEL stage=final
`

func digestBuild(t *testing.T, st *build.State, base, ctxDir string, opt build.Options) *build.Result {
	t.Helper()
	opt.ContextDir = ctxDir
	opt.Dockerfile = []byte(strings.ReplaceAll(digestDockerfile, "{{BASE}}", base))
	opt.Warn = func(w string) { t.Log("warning:", w) }
	ev := newEvents()
	opt.Progress = ev
	res, err := st.Build(t.Context(), opt)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, ev.logs.String())
	}
	return res
}

func cacheSpecs(t *testing.T, export bool, specs ...string) []remote.Spec {
	t.Helper()
	var out []remote.Spec
	for _, s := range specs {
		c, err := remote.ParseSpec(s, export)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, c)
	}
	return out
}

// TestCachedRebuildKeepsDigest builds without SOURCE_DATE_EPOCH and then
// again with every step cached: in the same state dir (twice), and in
// empty state dirs from the registry, local and inline caches. All give
// the image digest of the first build, whose history times are the times
// its steps ran. Pushing the unchanged image again costs one manifest HEAD.
func TestCachedRebuildKeepsDigest(t *testing.T) {
	base := busyboxBase(t)
	reg := newRecordingRegistry(t)
	ctxDir := writeContext(t, map[string]string{"src.txt": "source\n"})
	image := reg.addr + "/app:1"
	cacheRef := reg.addr + "/app:cache"
	localCache := filepath.Join(t.TempDir(), "cache")

	stA := openState(t, t.TempDir())
	before := time.Now().UTC()
	first := digestBuild(t, stA, base, ctxDir, build.Options{
		Tags: []string{image}, Push: true,
		CacheTo: cacheSpecs(t, true, "type=registry,ref="+cacheRef, "type=local,dest="+localCache),
	})
	after := time.Now().UTC()
	want := first.Manifest.Digest
	checkCreated(t, first.Config, before, after)

	time.Sleep(20 * time.Millisecond) // a rerun would get another time
	reg.take()
	again := digestBuild(t, stA, base, ctxDir, build.Options{Tags: []string{image}, Push: true})
	if again.Manifest.Digest != want {
		t.Errorf("no-op rebuild with --push: digest %s, want %s", again.Manifest.Digest, want)
	}
	reqs := reg.take()
	if reqs["HEAD /v2/app/manifests/1"] != 1 {
		t.Errorf("unchanged --push: %d manifest HEADs, want 1 (requests %v)", reqs["HEAD /v2/app/manifests/1"], reqs)
	}
	for k, n := range reqs {
		if k != "HEAD /v2/app/manifests/1" && k != "GET /v2/" {
			t.Errorf("unchanged --push made %d × %s; want only the manifest HEAD (and the auth ping)", n, k)
		}
	}
	if third := digestBuild(t, stA, base, ctxDir, build.Options{}); third.Manifest.Digest != want {
		t.Errorf("second no-op rebuild: digest %s, want %s", third.Manifest.Digest, want)
	}

	for _, from := range []string{"type=registry,ref=" + cacheRef, "type=local,src=" + localCache} {
		res := digestBuild(t, openState(t, t.TempDir()), base, ctxDir, build.Options{CacheFrom: cacheSpecs(t, false, from)})
		if res.Manifest.Digest != want {
			t.Errorf("--cache-from %s on an empty state dir: digest %s, want %s\nconfig %s\nwant config %s", from, res.Manifest.Digest, want, res.Config, first.Config)
		}
	}

	// The inline cache: the image that carries it differs by that field
	// only; a build from it without --cache-to is the plain image.
	inlineImage := reg.addr + "/app:inline"
	digestBuild(t, stA, base, ctxDir, build.Options{Tags: []string{inlineImage}, Push: true, CacheTo: cacheSpecs(t, true, "type=inline")})
	res := digestBuild(t, openState(t, t.TempDir()), base, ctxDir, build.Options{CacheFrom: cacheSpecs(t, false, "type=registry,ref="+inlineImage)})
	if res.Manifest.Digest != want {
		t.Errorf("--cache-from the inline cache on an empty state dir: digest %s, want %s\nconfig %s\nwant config %s", res.Manifest.Digest, want, res.Config, first.Config)
	}
}

// checkCreated checks that every history entry and the config have a
// creation time within the build, and that the config's is the last
// entry's.
func checkCreated(t *testing.T, raw []byte, before, after time.Time) {
	t.Helper()
	var cfg ocispec.Image
	if err := json.Unmarshal(raw, &cfg); err != nil {
		t.Fatal(err)
	}
	if cfg.Created == nil {
		t.Fatalf("config has no created time: %s", raw)
	}
	last := cfg.History[len(cfg.History)-1]
	if last.Created == nil || !last.Created.Equal(*cfg.Created) {
		t.Errorf("config created %v, want the last history entry's %v", cfg.Created, last.Created)
	}
	for i, h := range cfg.History[1:] { // [0] is the base image's
		if h.Created == nil || h.Created.Before(before.Add(-time.Second)) || h.Created.After(after) {
			t.Errorf("history[%d] %q created %v, want within the build (%v to %v)", i+1, h.CreatedBy, h.Created, before, after)
		}
	}
}
