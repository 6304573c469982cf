package build_test

import (
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/cache/remote"
	"github.com/builder-dev/builder/internal/testutil"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	ggcrremote "github.com/google/go-containerregistry/pkg/v1/remote"
)

// putRegistry is an in-process registry that remembers the blobs pushed
// to it (the PUT that completes an upload) and the bytes uploaded.
type putRegistry struct {
	addr  string
	mu    sync.Mutex
	puts  []string
	bytes int64
}

func newPutRegistry(t *testing.T) *putRegistry {
	c := &putRegistry{}
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.Contains(r.URL.Path, "/blobs/uploads/") && (r.Method == http.MethodPut || r.Method == http.MethodPatch) {
			body, _ := io.ReadAll(r.Body)
			r.Body = io.NopCloser(strings.NewReader(string(body)))
			c.mu.Lock()
			c.bytes += int64(len(body))
			if d := r.URL.Query().Get("digest"); d != "" && r.Method == http.MethodPut {
				c.puts = append(c.puts, d)
			}
			c.mu.Unlock()
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	c.addr = strings.TrimPrefix(srv.URL, "http://")
	return c
}

func (c *putRegistry) reset() {
	c.mu.Lock()
	c.puts, c.bytes = nil, 0
	c.mu.Unlock()
}

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

func cacheMountBuild(t *testing.T, st *build.State, base, runID string, to, from []string) (string, []string) {
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
	reg := newPutRegistry(t)
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
