package push

import (
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/builder-dev/builder/cache/content"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	"github.com/opencontainers/go-digest"
	"github.com/opencontainers/image-spec/specs-go"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// rotating is a credential helper whose token changes: each Resolve
// returns the current one, fixed (as ggcr's keychains are).
type rotating struct {
	mu       sync.Mutex
	password string
}

func (r *rotating) set(pw string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.password = pw
}

func (r *rotating) get() string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.password
}

func (r *rotating) Resolve(authn.Resource) (authn.Authenticator, error) {
	return authn.FromConfig(authn.AuthConfig{Username: "u", Password: r.get()}), nil
}

// testImage writes a one-layer image to a new store.
func testImage(t *testing.T) (*content.Store, ocispec.Descriptor) {
	t.Helper()
	store, err := content.NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	write := func(mt string, p []byte) ocispec.Descriptor {
		d, err := store.WriteBytes(ctx, p)
		if err != nil {
			t.Fatal(err)
		}
		return ocispec.Descriptor{MediaType: mt, Digest: d, Size: int64(len(p))}
	}
	cfg := write(ocispec.MediaTypeImageConfig, []byte(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":[]}}`))
	layer := write(ocispec.MediaTypeImageLayer, []byte("not really a tar"))
	raw, err := json.Marshal(ocispec.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: ocispec.MediaTypeImageManifest, Config: cfg, Layers: []ocispec.Descriptor{layer}})
	if err != nil {
		t.Fatal(err)
	}
	return store, write(ocispec.MediaTypeImageManifest, raw)
}

// TestPushResolvesCredentialsAgain: a push started long before its image
// (a long build) resolves its credentials again before the upload, so a
// token that expired meanwhile is not sent; a start that failed is
// tried again too.
func TestPushResolvesCredentialsAgain(t *testing.T) {
	var valid rotating
	valid.set("first")
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if _, pw, ok := req.BasicAuth(); !ok || pw != valid.get() {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
			w.WriteHeader(http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	reg := strings.TrimPrefix(srv.URL, "http://")
	store, desc := testImage(t)
	ctx := context.Background()
	old := RefreshAfter
	t.Cleanup(func() { RefreshAfter = old })

	for _, tc := range []struct {
		name         string
		startWith    string // the helper's token at Start
		refreshAfter time.Duration
	}{
		{"expired", "first", 0},
		{"start failed", "wrong", time.Hour},
	} {
		t.Run(tc.name, func(t *testing.T) {
			RefreshAfter = tc.refreshAfter
			valid.set("first")
			kc := &rotating{}
			kc.set(tc.startWith)
			ref, err := name.ParseReference(reg+"/app:"+strings.ReplaceAll(tc.name, " ", "-"), name.Insecure)
			if err != nil {
				t.Fatal(err)
			}
			p := Start(ctx, ref, kc, nil)
			p.Wait()
			// The helper's token expires and a new one is handed out.
			valid.set("second")
			kc.set("second")
			if err := p.Push(ctx, store, desc); err != nil {
				t.Fatalf("push with credentials resolved at Start: %v", err)
			}
			got, err := http.NewRequest(http.MethodHead, srv.URL+"/v2/app/manifests/"+ref.Identifier(), nil)
			if err != nil {
				t.Fatal(err)
			}
			got.SetBasicAuth("u", "second")
			got.Header.Set("Accept", ocispec.MediaTypeImageManifest)
			resp, err := http.DefaultClient.Do(got)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode != http.StatusOK || digest.Digest(resp.Header.Get("Docker-Content-Digest")) != desc.Digest {
				t.Errorf("tag after the push: %s %s, want %s", resp.Status, resp.Header.Get("Docker-Content-Digest"), desc.Digest)
			}
		})
	}
}
