package export

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/builder-dev/builder/cache"
	"github.com/builder-dev/builder/cache/content"
	"github.com/builder-dev/builder/exporter/push"
	"github.com/builder-dev/builder/output"
	"github.com/builder-dev/builder/source"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestStoreFailureStopsPush: when the store write beside a push fails (a
// sync, the DB), the build fails and the push is stopped, not left to
// put the image in the registry; the registry holds uploads until the
// push is stopped (or 10 s went by).
func TestStoreFailureStopsPush(t *testing.T) {
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if strings.Contains(req.URL.Path, "/blobs/uploads/") {
			select {
			case <-req.Context().Done():
				return
			case <-time.After(10 * time.Second):
			}
		}
		h.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	reg := strings.TrimPrefix(srv.URL, "http://")
	store, err := content.NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	desc := storeRandomImage(t, store)
	st := Stores{Content: store, Registries: &source.Registries{}}
	n := reg + "/app:1"
	ref, err := st.Registries.ParseReference(n)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	started := map[string]*push.Pending{n: push.Start(ctx, ref, authn.NewMultiKeychain(), nil)}
	failed := errors.New("syncing the blobs directory: disk on fire")
	_, err = storeAndPush(ctx, st, output.Spec{Type: output.Registry}, cache.Image{Manifest: desc}, []string{n},
		pushing{started: started, record: func([]cache.Image) error { return failed }})
	if !errors.Is(err, failed) {
		t.Errorf("storeAndPush = %v, want the store's error", err)
	}
	resp, err := http.Head(srv.URL + "/v2/app/manifests/1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusNotFound {
		t.Errorf("the tag after a failed store write: %s, want 404 Not Found (no image pushed)", resp.Status)
	}
}

// storeRandomImage writes a random one-layer image to store.
func storeRandomImage(t *testing.T, store *content.Store) ocispec.Descriptor {
	t.Helper()
	img, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	layers, err := img.Layers()
	if err != nil {
		t.Fatal(err)
	}
	raws := []func() ([]byte, error){img.RawConfigFile}
	for _, l := range layers {
		raws = append(raws, func() ([]byte, error) {
			rc, err := l.Compressed()
			if err != nil {
				return nil, err
			}
			defer rc.Close()
			return io.ReadAll(rc)
		})
	}
	raws = append(raws, img.RawManifest)
	var d digest.Digest
	var size int
	for _, raw := range raws {
		p, err := raw()
		if err != nil {
			t.Fatal(err)
		}
		if d, err = store.WriteBytes(context.Background(), p); err != nil {
			t.Fatal(err)
		}
		size = len(p)
	}
	mt, err := img.MediaType()
	if err != nil {
		t.Fatal(err)
	}
	return ocispec.Descriptor{MediaType: string(mt), Digest: d, Size: int64(size)}
}
