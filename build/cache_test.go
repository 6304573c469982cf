package build_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/builder-dev/builder/source"
	"github.com/google/go-containerregistry/pkg/authn"
	ggcrremote "github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/cache/remote"
	"github.com/builder-dev/builder/internal/testutil"
	"github.com/builder-dev/builder/solver"
	"github.com/google/go-containerregistry/pkg/registry"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// countingRegistry is an in-process registry that remembers the blobs
// fetched from it, the blobs pushed to it (the PUT that completes an
// upload) and the bytes uploaded.
type countingRegistry struct {
	addr  string
	mu    sync.Mutex
	gets  map[string]int // blob digest -> GETs
	puts  []string
	bytes int64
}

var blobPath = regexp.MustCompile(`^/v2/.+/blobs/(sha256:[0-9a-f]{64})$`)

func newCountingRegistry(t *testing.T) *countingRegistry {
	c := &countingRegistry{gets: map[string]int{}}
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if m := blobPath.FindStringSubmatch(r.URL.Path); m != nil && r.Method == http.MethodGet {
			c.mu.Lock()
			c.gets[m[1]]++
			c.mu.Unlock()
		}
		if strings.Contains(r.URL.Path, "/blobs/uploads/") && (r.Method == http.MethodPut || r.Method == http.MethodPatch) {
			c.upload(r)
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	c.addr = strings.TrimPrefix(srv.URL, "http://")
	return c
}

func (c *countingRegistry) reset() {
	c.mu.Lock()
	c.gets, c.puts, c.bytes = map[string]int{}, nil, 0
	c.mu.Unlock()
}

// upload counts the body of an upload request, and its blob when it
// completes one.
func (c *countingRegistry) upload(r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	r.Body = io.NopCloser(bytes.NewReader(body))
	c.mu.Lock()
	defer c.mu.Unlock()
	c.bytes += int64(len(body))
	if d := r.URL.Query().Get("digest"); d != "" && r.Method == http.MethodPut {
		c.puts = append(c.puts, d)
	}
}

func (c *countingRegistry) fetched() map[string]int {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := map[string]int{}
	for k, v := range c.gets {
		out[k] = v
	}
	return out
}

const cacheDockerfile = `FROM {{BASE}} AS builder
RUN mkdir /stuff && echo built > /out && echo intermediate > /stuff/big
COPY src.txt /src.txt
RUN cat /src.txt >> /out

FROM {{BASE}}
ARG SOURCE_DATE_EPOCH
COPY --from=builder /out /app/out
RUN echo final > /final && date > /when
WORKDIR /app
`

type cacheRun struct {
	res     *build.Result
	st      *build.State
	started []string
	took    time.Duration
}

func cacheBuild(t *testing.T, st *build.State, base, ctxDir, target string, to, from []string) cacheRun {
	t.Helper()
	opt := cacheOptions(t, to, from)
	ev := newEvents()
	opt.ContextDir, opt.Target, opt.Progress = ctxDir, target, ev
	opt.Dockerfile, opt.DockerfileName = []byte(strings.ReplaceAll(cacheDockerfile, "{{BASE}}", base)), "Dockerfile"
	opt.BuildArgs = map[string]string{"SOURCE_DATE_EPOCH": "1700000000"}
	opt.Warn = func(w string) { t.Log("warning:", w) }
	start := time.Now()
	res, err := st.Build(t.Context(), opt)
	took := time.Since(start)
	if err != nil {
		t.Fatalf("build: %v\n%s", err, ev.logs.String())
	}
	return cacheRun{res: res, st: st, started: ev.started(), took: took}
}

// started lists the steps that started (ran rather than came from a cache).
func (e *events) started() []string {
	var out []string
	e.mu.Lock()
	defer e.mu.Unlock()
	for name, kinds := range e.kinds {
		for _, k := range kinds {
			if k == solver.Started {
				out = append(out, name)
			}
		}
	}
	return out
}

func manifestLayers(t *testing.T, st *build.State, raw []byte) map[string]bool {
	t.Helper()
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, l := range m.Layers {
		out[l.Digest.String()] = true
	}
	return out
}

// TestCacheRegistry exports the cache of a multi-stage build to a
// registry (mode=max and mode=min) and builds again in empty state dirs
// with only --cache-from: every step is cached, the image is the same, and
// only the image's layers are downloaded.
func TestCacheRegistry(t *testing.T) {
	testutil.RequiresRoot(t)
	reg := newCountingRegistry(t)
	base := reg.addr + "/busybox:1"
	testutil.PushImage(t, testutil.BusyboxImage(t), base)
	ctxDir := writeContext(t, map[string]string{"src.txt": "source\n"})
	maxRef, minRef := reg.addr+"/cache:max", reg.addr+"/cache:min"

	a := cacheBuild(t, openState(t, t.TempDir()), base, ctxDir, "",
		[]string{"type=registry,ref=" + maxRef + ",mode=max", "type=registry,ref=" + minRef}, nil)
	if len(a.started) == 0 {
		t.Fatal("the first build ran nothing")
	}

	// The second runner: an empty state dir and the max cache.
	reg.reset()
	stB := openState(t, t.TempDir())
	b := cacheBuild(t, stB, base, ctxDir, "", nil, []string{"type=registry,ref=" + maxRef})
	t.Logf("second runner (cache-from registry, mode=max): %v", b.took)
	if len(b.started) != 0 {
		t.Errorf("second runner ran %v, want every step cached", b.started)
	}
	if b.res.Manifest.Digest != a.res.Manifest.Digest {
		t.Errorf("second runner made %s, first %s", b.res.Manifest.Digest, a.res.Manifest.Digest)
	}
	rawImage, err := stB.Content.ReadAll(b.res.Manifest.Digest)
	if err != nil {
		t.Fatal(err)
	}
	imageLayers := manifestLayers(t, stB, rawImage)
	cacheLayers := cacheManifestLayers(t, maxRef)
	fetched := reg.fetched()
	intermediate := 0
	for l := range cacheLayers {
		switch {
		case imageLayers[l] && fetched[l] != 1:
			t.Errorf("image layer %s fetched %d times, want once", l, fetched[l])
		case !imageLayers[l]:
			intermediate++
			if fetched[l] != 0 {
				t.Errorf("layer %s of another stage was fetched", l)
			}
		}
	}
	for l := range imageLayers {
		if !cacheLayers[l] {
			t.Errorf("image layer %s is not in the cache", l)
		}
	}
	if intermediate == 0 {
		t.Error("the max cache holds no layer of the builder stage")
	}
	t.Logf("blob GETs of the second runner: %d (image layers %d, cache layers %d)", len(fetched), len(imageLayers), len(cacheLayers))

	// mode=max has the builder stage: building it is cached too.
	d := cacheBuild(t, openState(t, t.TempDir()), base, ctxDir, "builder", nil, []string{"type=registry,ref=" + maxRef})
	if len(d.started) != 0 {
		t.Errorf("--target builder from the max cache ran %v", d.started)
	}

	// mode=min has only the image's steps: the final image is cached,
	// the builder stage runs again.
	c := cacheBuild(t, openState(t, t.TempDir()), base, ctxDir, "", nil, []string{"type=registry,ref=" + minRef})
	if len(c.started) != 0 || c.res.Manifest.Digest != a.res.Manifest.Digest {
		t.Errorf("from the min cache: ran %v, image %s (want nothing, %s)", c.started, c.res.Manifest.Digest, a.res.Manifest.Digest)
	}
	e := cacheBuild(t, openState(t, t.TempDir()), base, ctxDir, "builder", nil, []string{"type=registry,ref=" + minRef})
	if len(e.started) == 0 {
		t.Error("--target builder from the min cache ran nothing; want the builder stage run again")
	}

	// A missing cache is a warning; several sources are tried in turn.
	f := cacheBuild(t, openState(t, t.TempDir()), base, ctxDir, "", nil, []string{"type=registry,ref=" + reg.addr + "/cache:missing", "type=registry,ref=" + minRef})
	if len(f.started) != 0 || f.res.Manifest.Digest != a.res.Manifest.Digest {
		t.Errorf("with a missing cache first: ran %v, image %s", f.started, f.res.Manifest.Digest)
	}
}

func cacheManifestLayers(t *testing.T, ref string) map[string]bool {
	t.Helper()
	resp, err := http.Get("http://" + strings.Replace(ref, "/cache:", "/v2/cache/manifests/", 1))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("%s: %v", raw, err)
	}
	if m.Config.MediaType != remote.ConfigMediaType {
		t.Errorf("cache manifest config media type %q", m.Config.MediaType)
	}
	out := map[string]bool{}
	for _, l := range m.Layers {
		out[l.Digest.String()] = true
	}
	return out
}

// TestCacheLocal does the same through an OCI layout directory.
func TestCacheLocal(t *testing.T) {
	base := busyboxBase(t)
	ctxDir := writeContext(t, map[string]string{"src.txt": "source\n"})
	dir := filepath.Join(t.TempDir(), "cache")
	a := cacheBuild(t, openState(t, t.TempDir()), base, ctxDir, "", []string{"type=local,mode=max,dest=" + dir}, nil)
	b := cacheBuild(t, openState(t, t.TempDir()), base, ctxDir, "", nil, []string{"type=local,src=" + dir})
	t.Logf("second runner (cache-from local): %v", b.took)
	if len(b.started) != 0 || b.res.Manifest.Digest != a.res.Manifest.Digest {
		t.Errorf("from the local cache: ran %v, image %s (want nothing, %s)", b.started, b.res.Manifest.Digest, a.res.Manifest.Digest)
	}
	c := cacheBuild(t, openState(t, t.TempDir()), base, ctxDir, "builder", nil, []string{"type=local,src=" + dir})
	if len(c.started) != 0 {
		t.Errorf("--target builder from the local max cache ran %v", c.started)
	}
}

// TestCacheInline exports the cache inside the image's config
// (--cache-to type=inline), pushes the image, and builds again in an empty
// state dir with --cache-from type=registry,ref=IMAGE.
func TestCacheInline(t *testing.T) {
	base := busyboxBase(t)
	reg, _, _ := strings.Cut(base, "/")
	ctxDir := writeContext(t, map[string]string{"src.txt": "source\n"})
	inline, err := remote.ParseSpec("type=inline", true)
	if err != nil {
		t.Fatal(err)
	}
	image := reg + "/app:inline"
	stA := openState(t, t.TempDir())
	a, err := stA.Build(t.Context(), build.Options{
		ContextDir: ctxDir, Dockerfile: []byte(strings.ReplaceAll(cacheDockerfile, "{{BASE}}", base)),
		BuildArgs: map[string]string{"SOURCE_DATE_EPOCH": "1700000000"},
		CacheTo:   []remote.Spec{inline}, Tags: []string{image}, Push: true,
	})
	if err != nil {
		t.Fatal(err)
	}
	b := cacheBuild(t, openState(t, t.TempDir()), base, ctxDir, "", nil, []string{"type=registry,ref=" + image})
	if len(b.started) != 0 {
		t.Errorf("from the inline cache: ran %v, want nothing", b.started)
	}
	// The same layers; the configs differ only by the inline cache field.
	var ma, mb struct{ Layers []struct{ Digest string } }
	rawA, errA := stA.Content.ReadAll(a.Manifest.Digest)
	rawB, errB := b.st.Content.ReadAll(b.res.Manifest.Digest)
	if errA != nil || errB != nil || json.Unmarshal(rawA, &ma) != nil || json.Unmarshal(rawB, &mb) != nil {
		t.Fatalf("reading the manifests: %v %v", errA, errB)
	}
	if fmt.Sprint(ma.Layers) != fmt.Sprint(mb.Layers) {
		t.Errorf("layers from the inline cache = %v, want %v", mb.Layers, ma.Layers)
	}
}

// TestCacheDistributionRegistryEnvAuth round-trips the cache through
// Debian's docker-registry with htpasswd auth, the credentials given only
// through $BUILDER_REGISTRY_AUTH, as a CI job would.
func TestCacheDistributionRegistryEnvAuth(t *testing.T) {
	testutil.RequiresRoot(t)
	reg := testutil.DistributionRegistry(t, "ci", "s3cret")
	base := reg + "/base/busybox:1"
	testutil.PushImage(t, testutil.BusyboxImage(t), base, ggcrremote.WithAuth(&authn.Basic{Username: "ci", Password: "s3cret"}))
	t.Setenv("DOCKER_CONFIG", t.TempDir())
	t.Setenv(source.RegistryAuthEnv, reg+"=ci:s3cret")
	ctxDir := writeContext(t, map[string]string{"src.txt": "source\n"})
	ref := reg + "/team/cache:main"
	a := cacheBuild(t, openState(t, t.TempDir()), base, ctxDir, "", []string{"type=registry,mode=max,ref=" + ref}, nil)
	b := cacheBuild(t, openState(t, t.TempDir()), base, ctxDir, "", nil, []string{"type=registry,ref=" + ref})
	if len(b.started) != 0 || b.res.Manifest.Digest != a.res.Manifest.Digest {
		t.Errorf("second runner: ran %v, image %s (want nothing, %s)", b.started, b.res.Manifest.Digest, a.res.Manifest.Digest)
	}
	t.Setenv(source.RegistryAuthEnv, reg+"=ci:wrong")
	if _, err := openState(t, t.TempDir()).Build(t.Context(), build.Options{ContextDir: ctxDir, Dockerfile: []byte("FROM " + base + "\n")}); err == nil || !strings.Contains(err.Error(), "refused access") {
		t.Errorf("wrong credentials: err = %v, want the registry's refusal explained", err)
	}
}
