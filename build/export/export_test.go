package export

import (
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
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
// put the image in the registry: when it fails while blobs upload (the
// registry holds uploads until the push is stopped, or 10 s went by), and
// when it fails after every blob was uploaded (the tag waits for it).
func TestStoreFailureStopsPush(t *testing.T) {
	failed := errors.New("syncing the blobs directory: disk on fire")
	t.Run("during uploads", func(t *testing.T) {
		r := startPushRegistry(t, true)
		if err := r.storeAndPush(t, func([]cache.Image) error { return failed }); !errors.Is(err, failed) {
			t.Errorf("storeAndPush = %v, want the store's error", err)
		}
		r.checkTag(t, http.StatusNotFound)
	})
	// The store write ends after the blobs were uploaded (which it does
	// not hold back), and after the tag was put if the push does not
	// wait for it (1 s if it does).
	afterBlobs := func(r *pushRegistry, err error) func([]cache.Image) error {
		return func([]cache.Image) error {
			select {
			case <-r.blobs:
			case <-time.After(10 * time.Second):
				return errors.New("the blobs were not uploaded while the store write ran")
			}
			select {
			case <-r.tagged:
			case <-time.After(time.Second):
			}
			return err
		}
	}
	t.Run("after uploads", func(t *testing.T) {
		r := startPushRegistry(t, false)
		if err := r.storeAndPush(t, afterBlobs(r, failed)); !errors.Is(err, failed) {
			t.Errorf("storeAndPush = %v, want the store's error", err)
		}
		r.checkTag(t, http.StatusNotFound)
	})
	t.Run("succeeds", func(t *testing.T) {
		r := startPushRegistry(t, false)
		if err := r.storeAndPush(t, afterBlobs(r, nil)); err != nil {
			t.Errorf("storeAndPush = %v", err)
		}
		r.checkTag(t, http.StatusOK)
	})
}

// pushRegistry is a registry that says when the image's blobs (2) were
// uploaded and when a manifest was put, and, if told to, holds uploads
// until the push is stopped (or 10 s went by).
type pushRegistry struct {
	url            string
	blobs, tagged  chan struct{}
	uploaded       atomic.Int32
	blobsOnce, tag sync.Once
}

func startPushRegistry(t *testing.T, hold bool) *pushRegistry {
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	r := &pushRegistry{blobs: make(chan struct{}), tagged: make(chan struct{})}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		upload := strings.Contains(req.URL.Path, "/blobs/uploads/")
		if upload && hold {
			select {
			case <-req.Context().Done():
				return
			case <-time.After(10 * time.Second):
			}
		}
		h.ServeHTTP(w, req)
		switch {
		case upload && req.Method == http.MethodPut:
			if r.uploaded.Add(1) == 2 {
				r.blobsOnce.Do(func() { close(r.blobs) })
			}
		case strings.Contains(req.URL.Path, "/manifests/") && req.Method == http.MethodPut:
			r.tag.Do(func() { close(r.tagged) })
		}
	}))
	t.Cleanup(srv.Close)
	r.url = srv.URL
	return r
}

// storeAndPush pushes a random image to r as app:1 while record writes
// the store.
func (r *pushRegistry) storeAndPush(t *testing.T, record func([]cache.Image) error) error {
	store, err := content.NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	desc := storeRandomImage(t, store)
	st := Stores{Content: store, Registries: &source.Registries{}}
	n := strings.TrimPrefix(r.url, "http://") + "/app:1"
	ref, err := st.Registries.ParseReference(n)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	started := map[string]*push.Pending{n: push.Start(ctx, ref, authn.NewMultiKeychain(), nil)}
	_, err = storeAndPush(ctx, st, output.Spec{Type: output.Registry}, cache.Image{Manifest: desc}, []string{n},
		pushing{started: started, record: record})
	return err
}

// checkTag checks the answer to a HEAD of app:1.
func (r *pushRegistry) checkTag(t *testing.T, want int) {
	t.Helper()
	resp, err := http.Head(r.url + "/v2/app/manifests/1")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != want {
		t.Errorf("the tag after the push: %s, want %d %s", resp.Status, want, http.StatusText(want))
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
