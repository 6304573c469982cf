package build_test

import (
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/internal/testutil"
	"github.com/google/go-containerregistry/pkg/registry"
)

// TestPushStartsWithBuild: a build with --push asks what its tag names
// while its base image is being resolved, not after the solve: the
// registry holds its answer about the base until the tag's HEAD has come
// (or 10 s went by). A no-op rebuild then has the answer it needs to skip
// the push by the time its image is assembled.
func TestPushStartsWithBuild(t *testing.T) {
	testutil.RequiresRoot(t)
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	tagAsked := make(chan struct{})
	var once sync.Once
	var mu sync.Mutex
	var early, armed bool
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		switch {
		case req.Method == http.MethodHead && req.URL.Path == "/v2/app/manifests/1":
			once.Do(func() { close(tagAsked) })
		case req.Method == http.MethodHead && req.URL.Path == "/v2/busybox/manifests/1" && isArmed(&mu, &armed):
			select {
			case <-tagAsked:
				mu.Lock()
				early = true
				mu.Unlock()
			case <-time.After(10 * time.Second):
			}
		}
		h.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	reg := strings.TrimPrefix(srv.URL, "http://")
	base := reg + "/busybox:1"
	testutil.PushImage(t, testutil.BusyboxImage(t), base)
	mu.Lock()
	armed = true // the base's push above asked about it too
	mu.Unlock()
	st := openState(t, t.TempDir())
	digestBuild(t, st, base, writeContext(t, map[string]string{"src.txt": "source\n"}), build.Options{Tags: []string{reg + "/app:1"}, Push: true})
	mu.Lock()
	defer mu.Unlock()
	if !early {
		t.Error("the tag's manifest HEAD came after the base image was resolved, not beside it")
	}
}

func isArmed(mu *sync.Mutex, armed *bool) bool {
	mu.Lock()
	defer mu.Unlock()
	return *armed
}
