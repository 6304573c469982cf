package build_test

import (
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/internal/testutil"
	"github.com/google/go-containerregistry/pkg/registry"
)

// mountingRegistry is go-containerregistry's in-process registry made to
// keep blobs per repository, as real registries do (its own are global),
// with cross-repository blob mounts, and a record of mounts and uploads.
type mountingRegistry struct {
	inner   http.Handler
	mu      sync.Mutex
	has     map[string]bool // repo + "@" + digest
	mounted []string        // digests
	put     []string        // digests uploaded
}

// repoOf returns the repository of a /v2/REPO/blobs/... path.
func repoOf(p string) string {
	p = strings.TrimPrefix(p, "/v2/")
	i := strings.Index(p, "/blobs/")
	if i < 0 {
		return ""
	}
	return p[:i]
}

func (m *mountingRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	repo := repoOf(r.URL.Path)
	if r.Method == http.MethodHead && strings.Contains(r.URL.Path, "/blobs/sha256:") {
		d := r.URL.Path[strings.LastIndex(r.URL.Path, "/")+1:]
		m.mu.Lock()
		ok := m.has[repo+"@"+d]
		m.mu.Unlock()
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			return
		}
	}
	if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/blobs/uploads/") && q.Get("mount") != "" && q.Get("from") != "" {
		d := q.Get("mount")
		m.mu.Lock()
		ok := m.has[q.Get("from")+"@"+d]
		if ok {
			m.mounted = append(m.mounted, d)
			m.has[repo+"@"+d] = true
		}
		m.mu.Unlock()
		if ok {
			w.Header().Set("Location", "/v2/"+repo+"/blobs/"+d)
			w.Header().Set("Docker-Content-Digest", d)
			w.WriteHeader(http.StatusCreated)
			return
		}
	}
	if r.Method == http.MethodPut && q.Get("digest") != "" {
		m.mu.Lock()
		m.put = append(m.put, q.Get("digest"))
		m.has[repo+"@"+q.Get("digest")] = true
		m.mu.Unlock()
	}
	m.inner.ServeHTTP(w, r)
}

// TestPushMountsBaseLayers pushes an image built on a base from the same
// registry: the base's layers are mounted from the base's repository, not
// uploaded again.
func TestPushMountsBaseLayers(t *testing.T) {
	testutil.RequiresRoot(t)
	mr := &mountingRegistry{inner: registry.New(), has: map[string]bool{}}
	srv := httptest.NewServer(mr)
	t.Cleanup(srv.Close)
	u, _ := url.Parse(srv.URL)
	reg := u.Host
	base := reg + "/base/busybox:1"
	img := testutil.BusyboxImage(t)
	testutil.PushImage(t, img, base)
	baseLayers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	baseDigest, _ := baseLayers[0].Digest()

	st := openState(t, t.TempDir())
	mr.mu.Lock()
	mr.put, mr.mounted = nil, nil
	mr.mu.Unlock()
	if _, err := st.Build(t.Context(), build.Options{
		ContextDir: t.TempDir(), Dockerfile: []byte("FROM " + base + "\nRUN echo app > /app\n"),
		Tags: []string{reg + "/team/app:1"}, Push: true,
	}); err != nil {
		t.Fatal(err)
	}
	mr.mu.Lock()
	defer mr.mu.Unlock()
	if !slices.Contains(mr.mounted, baseDigest.String()) {
		t.Errorf("the base layer %s was not mounted (mounts %v)", baseDigest, mr.mounted)
	}
	if slices.Contains(mr.put, baseDigest.String()) {
		t.Errorf("the base layer %s was uploaded again", baseDigest)
	}
	if len(mr.put) == 0 {
		t.Error("nothing was uploaded: the new layer and config should have been")
	}
}
