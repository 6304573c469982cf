package exporter_test

import (
	"io"
	"log"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/builder-dev/builder/exporter"
	"github.com/builder-dev/builder/exporter/push"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
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
// new tag, a HEAD per blob (the record of the state directory says the
// registry has them) and the manifest PUT, no upload.
func TestPushUnchangedIsOneManifestHead(t *testing.T) {
	reqs := &requestLog{n: map[string]int{}}
	srv := httptest.NewServer(reqs.wrap(registry.New(registry.Logger(log.New(io.Discard, "", 0)))))
	defer srv.Close()
	e := newExporter(t)
	img := twoLayerImage(t, e)
	host := strings.TrimPrefix(srv.URL, "http://")
	push := func(tag string) map[string]int {
		t.Helper()
		ref, err := name.ParseReference(host+"/app:"+tag, name.Insecure)
		if err != nil {
			t.Fatal(err)
		}
		if err := exporter.Push(t.Context(), e.Content, img.Manifest, ref, authn.NewMultiKeychain(), e.DB); err != nil {
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

// touchedImages assembles an image of two layers and one that differs in
// its top layer only, as a rebuild after a small COPY changed makes.
func touchedImages(t *testing.T, e *exporter.Exporter) (first, touched *exporter.Image) {
	t.Helper()
	top, cfg := twoLayers(t, e, time.Now())
	first, err := e.AssembleWith(t.Context(), top, cfg, exporter.Options{})
	if err != nil {
		t.Fatal(err)
	}
	addLayer(t, e, "l2b", "l1", time.Now(), map[string]string{"app/two": "touched\n"})
	touched, err = e.AssembleWith(t.Context(), "l2b", cfg, exporter.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return first, touched
}

func pushTo(t *testing.T, e *exporter.Exporter, img *exporter.Image, ref string) {
	t.Helper()
	r, err := name.ParseReference(ref, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	if err := exporter.Push(t.Context(), e.Content, img.Manifest, r, authn.NewMultiKeychain(), e.DB); err != nil {
		t.Fatal(err)
	}
}

// TestPushTouchedRequests: pushing a rebuild whose top layer changed to
// the tag of the first build uploads the new layer and config in a POST
// and a PUT each (no PATCH, no HEAD before), asks about the shared layer
// with one HEAD, and puts the manifest.
func TestPushTouchedRequests(t *testing.T) {
	reqs := &requestLog{n: map[string]int{}}
	srv := httptest.NewServer(reqs.wrap(registry.New(registry.Logger(log.New(io.Discard, "", 0)))))
	defer srv.Close()
	e := newExporter(t)
	first, touched := touchedImages(t, e)
	ref := strings.TrimPrefix(srv.URL, "http://") + "/app:1"
	pushTo(t, e, first, ref)
	reqs.take()
	pushTo(t, e, touched, ref)
	got := reqs.take()
	want := map[string]int{"GET ping": 1, "HEAD manifest": 1, "HEAD blob": 1, "POST blob": 2, "PUT blob": 2, "PUT manifest": 1}
	if !maps.Equal(got, want) {
		t.Errorf("push of a touched rebuild: requests %v, want %v", got, want)
	}
	pulled, err := remote.Image(mustRef(t, ref))
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(pulled); err != nil {
		t.Errorf("pushed image: %v", err)
	}
}

// TestPushAfterRegistryLostBlob: the state directory's record says the
// registry has the shared layer, but the registry lost it; the push of the
// rebuild must send it again, and the image pulled back must be whole.
func TestPushAfterRegistryLostBlob(t *testing.T) {
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0)),
		registry.WithBlobHandler(registry.NewInMemoryBlobHandler())))
	defer srv.Close()
	e := newExporter(t)
	first, touched := touchedImages(t, e)
	host := strings.TrimPrefix(srv.URL, "http://")
	pushTo(t, e, first, host+"/app:1")
	shared := first.Layers[0].Digest
	if touched.Layers[0].Digest != shared {
		t.Fatalf("the rebuild does not share the first layer %s", shared)
	}
	req, _ := http.NewRequest(http.MethodDelete, srv.URL+"/v2/app/blobs/"+shared.String(), nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("deleting blob %s from the registry: %s", shared, resp.Status)
	}
	pushTo(t, e, touched, host+"/app:1")
	pulled, err := remote.Image(mustRef(t, host+"/app:1"))
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(pulled); err != nil {
		t.Errorf("image pushed after the registry lost blob %s: %v", shared, err)
	}
}

// TestPushFollowsLoopbackUploadLocation: a loopback registry may send an
// upload on to another loopback address (a registry pushed to as
// localhost answering 127.0.0.1), as remote.Write and containerd follow
// it; a public registry may not (TestCheckHost in package push tries it).
func TestPushFollowsLoopbackUploadLocation(t *testing.T) {
	var sentElsewhere atomic.Bool
	inner := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	// The registry's uploads, at another loopback address.
	elsewhere := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		sentElsewhere.Store(true)
		inner.ServeHTTP(w, r)
	}))
	l, err := net.Listen("tcp", "127.0.0.2:0")
	if err != nil {
		t.Skipf("no second loopback address: %v", err)
	}
	elsewhere.Listener = l
	elsewhere.Start()
	defer elsewhere.Close()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && strings.HasSuffix(r.URL.Path, "/blobs/uploads/") {
			rec := httptest.NewRecorder()
			inner.ServeHTTP(rec, r)
			loc, err := url.Parse(rec.Header().Get("Location"))
			if err != nil || rec.Code != http.StatusAccepted {
				t.Errorf("upload POST: %d, Location %q (%v)", rec.Code, rec.Header().Get("Location"), err)
			}
			w.Header().Set("Location", elsewhere.URL+loc.RequestURI())
			w.WriteHeader(http.StatusAccepted)
			return
		}
		inner.ServeHTTP(w, r)
	}))
	defer srv.Close()
	e := newExporter(t)
	img := twoLayerImage(t, e)
	r := mustRef(t, strings.TrimPrefix(srv.URL, "http://")+"/app:1")
	if err := exporter.Push(t.Context(), e.Content, img.Manifest, r, authn.NewMultiKeychain(), e.DB); err != nil {
		t.Fatalf("Push with upload Locations at %s: %v", elsewhere.URL, err)
	}
	if !sentElsewhere.Load() {
		t.Error("no blob was sent to the upload Location")
	}
	pulled, err := remote.Image(r)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(pulled); err != nil {
		t.Errorf("pushed image: %v", err)
	}
}

func twoLayerImage(t *testing.T, e *exporter.Exporter) *exporter.Image {
	t.Helper()
	top, cfg := twoLayers(t, e, time.Now())
	img, err := e.AssembleWith(t.Context(), top, cfg, exporter.Options{})
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func mustRef(t *testing.T, s string) name.Reference {
	t.Helper()
	r, err := name.ParseReference(s, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// TestPushStartedBeforeTheImage: push.Start asks the registry what needs
// no image (the ping, what the tag names) while the image is still being
// assembled; Push then sends only what needs the image.
func TestPushStartedBeforeTheImage(t *testing.T) {
	reqs := &requestLog{n: map[string]int{}}
	srv := httptest.NewServer(reqs.wrap(registry.New(registry.Logger(log.New(io.Discard, "", 0)))))
	defer srv.Close()
	e := newExporter(t)
	ref := mustRef(t, strings.TrimPrefix(srv.URL, "http://")+"/app:1")
	p := push.Start(t.Context(), ref, authn.NewMultiKeychain(), e.DB)
	p.Wait()
	if got, want := reqs.take(), map[string]int{"GET ping": 1, "HEAD manifest": 1}; !maps.Equal(got, want) {
		t.Errorf("requests of push.Start = %v, want %v", got, want)
	}
	img := twoLayerImage(t, e)
	if err := p.Push(t.Context(), e.Content, img.Manifest); err != nil {
		t.Fatal(err)
	}
	if got := reqs.take(); got["GET ping"]+got["HEAD manifest"] != 0 || got["PUT manifest"] != 1 {
		t.Errorf("requests of the started push = %v, want no ping nor manifest HEAD, one manifest PUT", got)
	}
	pulled, err := remote.Image(ref)
	if err != nil {
		t.Fatal(err)
	}
	if err := validate.Image(pulled); err != nil {
		t.Errorf("pushed image: %v", err)
	}
}

// TestPushStartedTagMoved: a push started when the tag named its image
// already asks again before skipping, so a tag another push moved in the
// meantime is put back on the image.
func TestPushStartedTagMoved(t *testing.T) {
	reqs := &requestLog{n: map[string]int{}}
	srv := httptest.NewServer(reqs.wrap(registry.New(registry.Logger(log.New(io.Discard, "", 0)))))
	defer srv.Close()
	e := newExporter(t)
	ref := mustRef(t, strings.TrimPrefix(srv.URL, "http://")+"/app:1")
	img := twoLayerImage(t, e)
	if err := exporter.Push(t.Context(), e.Content, img.Manifest, ref, authn.NewMultiKeychain(), e.DB); err != nil {
		t.Fatal(err)
	}
	// Start's answer older than RecheckAfter: Push asks again.
	defer func(d time.Duration) { push.RecheckAfter = d }(push.RecheckAfter)
	push.RecheckAfter = 0
	p := push.Start(t.Context(), ref, authn.NewMultiKeychain(), e.DB)
	p.Wait()
	other, err := random.Image(64, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(ref, other); err != nil {
		t.Fatal(err)
	}
	reqs.take()
	if err := p.Push(t.Context(), e.Content, img.Manifest); err != nil {
		t.Fatal(err)
	}
	if got := reqs.take(); got["HEAD manifest"] != 1 || got["PUT manifest"] != 1 {
		t.Errorf("requests of the push after the tag moved = %v, want one manifest HEAD and one PUT", got)
	}
	d, err := remote.Head(ref)
	if err != nil {
		t.Fatal(err)
	}
	if d.Digest.String() != img.Manifest.Digest.String() {
		t.Errorf("tag names %s after the push, want %s", d.Digest, img.Manifest.Digest)
	}

	// The tag unmoved: one HEAD more, nothing sent.
	p = push.Start(t.Context(), ref, authn.NewMultiKeychain(), e.DB)
	p.Wait()
	reqs.take()
	if err := p.Push(t.Context(), e.Content, img.Manifest); err != nil {
		t.Fatal(err)
	}
	if got, want := reqs.take(), map[string]int{"HEAD manifest": 1}; !maps.Equal(got, want) {
		t.Errorf("requests of the push to an unmoved tag = %v, want %v", got, want)
	}

	// An answer fresher than RecheckAfter (a no-op rebuild): trusted.
	push.RecheckAfter = time.Minute
	p = push.Start(t.Context(), ref, authn.NewMultiKeychain(), e.DB)
	p.Wait()
	reqs.take()
	if err := p.Push(t.Context(), e.Content, img.Manifest); err != nil {
		t.Fatal(err)
	}
	if got := reqs.take(); len(got) != 0 {
		t.Errorf("requests of the push right after Start = %v, want none", got)
	}
}
