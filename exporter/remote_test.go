package exporter_test

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/builder-dev/builder/exporter"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
)

// requestLog counts the requests an in-process registry gets, as
// "METHOD kind" with kind one of ping, manifest, blob.
type requestLog struct {
	mu sync.Mutex
	n  map[string]int
}

func (l *requestLog) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		kind := "ping"
		switch {
		case strings.Contains(r.URL.Path, "/manifests/"):
			kind = "manifest"
		case strings.Contains(r.URL.Path, "/blobs/"):
			kind = "blob"
		}
		l.mu.Lock()
		l.n[r.Method+" "+kind]++
		l.mu.Unlock()
		h.ServeHTTP(w, r)
	})
}

func (l *requestLog) take() map[string]int {
	l.mu.Lock()
	defer l.mu.Unlock()
	n := l.n
	l.n = map[string]int{}
	return n
}

// TestPushUnchangedIsOneManifestHead: pushing an image the registry has
// under that tag already is one manifest HEAD, no blob request; under a
// new tag, a HEAD per blob and the manifest PUT, no upload.
func TestPushUnchangedIsOneManifestHead(t *testing.T) {
	reqs := &requestLog{n: map[string]int{}}
	srv := httptest.NewServer(reqs.wrap(registry.New(registry.Logger(log.New(io.Discard, "", 0)))))
	defer srv.Close()
	e := newExporter(t)
	top, cfg := twoLayers(t, e, time.Now())
	img, err := e.AssembleWith(t.Context(), top, cfg, exporter.Options{})
	if err != nil {
		t.Fatal(err)
	}
	host := strings.TrimPrefix(srv.URL, "http://")
	push := func(tag string) map[string]int {
		t.Helper()
		ref, err := name.ParseReference(host+"/app:"+tag, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := exporter.Push(t.Context(), e.Content, img.Manifest, ref, authn.NewMultiKeychain(), nil); err != nil {
			t.Fatal(err)
		}
		return reqs.take()
	}
	if first := push("1"); first["PUT blob"]+first["PATCH blob"]+first["POST blob"] == 0 || first["PUT manifest"] != 1 {
		t.Fatalf("first push: %v; want blob uploads and a manifest PUT", first)
	}
	again := push("1")
	for k, n := range again {
		if k != "GET ping" && k != "HEAD manifest" {
			t.Errorf("push of an unchanged image: %d × %s, want none", n, k)
		}
	}
	if again["HEAD manifest"] != 1 {
		t.Errorf("push of an unchanged image: %d manifest HEADs, want 1 (%v)", again["HEAD manifest"], again)
	}
	other := push("2")
	if up := other["PUT blob"] + other["PATCH blob"] + other["POST blob"]; up != 0 || other["PUT manifest"] != 1 {
		t.Errorf("push under a new tag: %v; want no blob upload and one manifest PUT", other)
	}
	if other["HEAD blob"] > len(img.Layers)+1 {
		t.Errorf("push under a new tag: %d blob HEADs for %d layers and a config", other["HEAD blob"], len(img.Layers))
	}
}
