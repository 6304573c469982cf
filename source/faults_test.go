package source_test

import (
	"crypto/sha256"
	"encoding/hex"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/builder-dev/builder/cache/content"
	"github.com/builder-dev/builder/internal/faultproxy"
	"github.com/builder-dev/builder/internal/testutil"
	"github.com/builder-dev/builder/source"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// genLayer is a blob of size pseudo-random bytes, generated as it is read,
// so that a 1 GiB layer never sits in memory.
type genLayer struct {
	size int64
	seed uint64
	hash v1.Hash
}

func (g *genLayer) open() io.ReadCloser {
	return io.NopCloser(io.LimitReader(rand.NewChaCha8([32]byte{byte(g.seed), byte(g.seed >> 8)}), g.size))
}

func newGenLayer(t testing.TB, size int64, seed uint64) *genLayer {
	g := &genLayer{size: size, seed: seed}
	h := sha256.New()
	if _, err := io.Copy(h, g.open()); err != nil {
		t.Fatal(err)
	}
	g.hash = v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(h.Sum(nil))}
	return g
}

func (g *genLayer) Digest() (v1.Hash, error)             { return g.hash, nil }
func (g *genLayer) DiffID() (v1.Hash, error)             { return g.hash, nil }
func (g *genLayer) Compressed() (io.ReadCloser, error)   { return g.open(), nil }
func (g *genLayer) Uncompressed() (io.ReadCloser, error) { return g.open(), nil }
func (g *genLayer) Size() (int64, error)                 { return g.size, nil }
func (g *genLayer) MediaType() (types.MediaType, error)  { return types.OCIUncompressedLayer, nil }

func (g *genLayer) desc() ocispec.Descriptor {
	return ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayer, Digest: digest.Digest(g.hash.String()), Size: g.size}
}

// faultSetup is docker-registry behind a fault proxy, holding one blob in
// repository "app".
type faultSetup struct {
	upstream string
	proxy    *faultproxy.Proxy
	ref      name.Reference // through the proxy
	blob     *genLayer
	reg      *source.Registries
	store    *content.Store
}

const faultUser, faultPass = "tester", "s3cret"

func newFaultSetup(t *testing.T, size int64) *faultSetup {
	t.Helper()
	upstream := testutil.DistributionRegistry(t, faultUser, faultPass)
	blob := newGenLayer(t, size, uint64(size))
	repo, err := name.NewRepository(upstream + "/app")
	if err != nil {
		t.Fatal(err)
	}
	basic := &authn.Basic{Username: faultUser, Password: faultPass}
	if err := remote.WriteLayer(repo, blob, remote.WithAuth(basic), remote.WithContext(t.Context())); err != nil {
		t.Fatal(err)
	}
	p := faultproxy.New(upstream)
	t.Cleanup(p.Close)
	ref, err := name.ParseReference(p.Addr + "/app:1")
	if err != nil {
		t.Fatal(err)
	}
	store, err := content.NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &faultSetup{upstream: upstream, proxy: p, ref: ref, blob: blob, store: store, reg: &source.Registries{
		Content:  store,
		Keychain: staticKeychain{basic},
		Retry:    &source.RetryPolicy{Backoff: 20 * time.Millisecond, Attempts: 4, MaxRetryAfter: 5 * time.Second},
	}}
}

// countingTransport counts the response body bytes the client reads.
type countingTransport struct{ n atomic.Int64 }

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := remote.DefaultTransport.RoundTrip(r)
	if resp != nil {
		resp.Body = &countingBody{ReadCloser: resp.Body, n: &c.n}
	}
	return resp, err
}

type countingBody struct {
	io.ReadCloser
	n *atomic.Int64
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n.Add(int64(n))
	return n, err
}

type staticKeychain struct{ a authn.Authenticator }

func (k staticKeychain) Resolve(authn.Resource) (authn.Authenticator, error) { return k.a, nil }

// checkNothingStored fails unless the store holds no blob and no ingest
// file: a failed download must leave nothing a later build could trust.
func checkNothingStored(t *testing.T, s *content.Store) {
	t.Helper()
	s.Walk(func(d digest.Digest, size int64) error {
		t.Errorf("blob %s (%d bytes) was stored", d, size)
		return nil
	})
	if left, _ := os.ReadDir(filepath.Join(s.Root(), "ingest")); len(left) > 0 {
		t.Errorf("ingest files left behind: %v", left)
	}
}

func checkErrorSays(t *testing.T, err error, parts ...string) {
	t.Helper()
	if err == nil {
		t.Fatal("no error")
	}
	for _, p := range parts {
		if !strings.Contains(err.Error(), p) {
			t.Errorf("error does not say %q: %v", p, err)
		}
	}
}

// TestFetchBlobFaults fetches a 2 MiB blob through each fault the proxy
// injects: transient ones are retried or resumed and the blob arrives
// whole; lasting ones fail with the registry host, the reference, the
// digest, the status and what to do, and store nothing.
func TestFetchBlobFaults(t *testing.T) {
	const size = 2 << 20
	retryAfter := http.Header{"Retry-After": {"1"}}
	tests := []struct {
		name   string
		faults []faultproxy.Fault
		// wantErr lists what a failure must say; empty for success.
		wantErr []string
		minTime time.Duration
		// maxRead bounds the body bytes the client reads.
		maxRead int64
	}{
		{name: "503 twice", faults: []faultproxy.Fault{{Kind: faultproxy.Status, Status: 503, Path: "/blobs/", Times: 2}}},
		{name: "503 always", faults: []faultproxy.Fault{{Kind: faultproxy.Status, Status: 503, Path: "/blobs/"}},
			wantErr: []string{"503 Service Unavailable", "try again later"}},
		{name: "429 with Retry-After", faults: []faultproxy.Fault{{Kind: faultproxy.Status, Status: 429, Header: retryAfter, Path: "/blobs/", Times: 1}},
			minTime: time.Second},
		{name: "429 always", faults: []faultproxy.Fault{{Kind: faultproxy.Status, Status: 429, Path: "/blobs/"}},
			wantErr: []string{"429 Too Many Requests", "rate"}},
		{name: "reset every 300 KB", faults: []faultproxy.Fault{{Kind: faultproxy.Reset, After: 300 << 10, Path: "/blobs/"}},
			maxRead: size * 11 / 10},
		{name: "reset at once, always", faults: []faultproxy.Fault{{Kind: faultproxy.Reset, After: 0, Path: "/blobs/"}},
			wantErr: []string{"tries", "check the network"}},
		{name: "trickle", faults: []faultproxy.Fault{{Kind: faultproxy.Trickle, Chunk: 256 << 10, Delay: 5 * time.Millisecond, Path: "/blobs/"}}},
		{name: "corrupt once", faults: []faultproxy.Fault{{Kind: faultproxy.Corrupt, After: 12345, Path: "/blobs/", Times: 1}}},
		{name: "corrupt always", faults: []faultproxy.Fault{{Kind: faultproxy.Corrupt, After: 12345, Path: "/blobs/"}},
			wantErr: []string{"digest mismatch", "corrupted"}},
		{name: "404", faults: []faultproxy.Fault{{Kind: faultproxy.Status, Status: 404, Path: "/blobs/"}},
			wantErr: []string{"404 Not Found"}},
		{name: "endless body", faults: []faultproxy.Fault{{Kind: faultproxy.Endless, Path: "/blobs/"}},
			wantErr: []string{"more than the 2097152 bytes"}, maxRead: size + 1<<20},
	}
	s := newFaultSetup(t, size)
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			store, err := content.NewStore(filepath.Join(t.TempDir(), "store"))
			if err != nil {
				t.Fatal(err)
			}
			counted := &countingTransport{}
			reg := &source.Registries{Content: store, Keychain: s.reg.Keychain, Retry: s.reg.Retry, Transport: counted}
			s.proxy.Clear()
			s.proxy.Add(tt.faults...)
			s.proxy.ResetCounters()
			start := time.Now()
			err = reg.FetchBlob(t.Context(), s.ref, s.blob.desc())
			took := time.Since(start)
			t.Logf("%s: %d requests, %d faults, %d bytes sent, %d read, %v: %v", tt.name, s.proxy.Requests(), s.proxy.Injected(), s.proxy.Bytes(), counted.n.Load(), took.Round(time.Millisecond), err)
			if s.proxy.Injected() == 0 {
				t.Error("no fault was injected")
			}
			if tt.maxRead > 0 && counted.n.Load() > tt.maxRead {
				t.Errorf("the client read %d bytes, want at most %d", counted.n.Load(), tt.maxRead)
			}
			if len(tt.wantErr) > 0 {
				checkErrorSays(t, err, append(tt.wantErr, s.proxy.Addr, "app:1", s.blob.hash.String())...)
				checkNothingStored(t, store)
				// Once the registry behaves, the same store and client
				// fetch the blob: the failure left nothing to trip over.
				s.proxy.Clear()
				if err := reg.FetchBlob(t.Context(), s.ref, s.blob.desc()); err != nil {
					t.Errorf("fetching again without faults: %v", err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if took < tt.minTime {
				t.Errorf("took %v, want at least %v (Retry-After)", took, tt.minTime)
			}
			if _, err := store.ReadAll(digest.Digest(s.blob.hash.String())); err != nil {
				t.Errorf("reading the fetched blob back: %v", err)
			}
		})
	}
}

// TestResolveManifestBounds: a registry that sends an endless manifest is
// cut off at the 4 MiB cap.
func TestResolveManifestBounds(t *testing.T) {
	s := newFaultSetup(t, 1024)
	img, err := random.Image(1024, 1)
	if err != nil {
		t.Fatal(err)
	}
	testutil.PushImage(t, img, s.upstream+"/app:1", remote.WithAuth(&authn.Basic{Username: faultUser, Password: faultPass}))
	s.proxy.Add(faultproxy.Fault{Kind: faultproxy.Endless, Path: "/manifests/", Method: http.MethodGet})
	counted := &countingTransport{}
	s.reg.Transport = counted
	_, err = s.reg.Resolve(t.Context(), s.ref.String(), ocispec.Platform{OS: "linux", Architecture: "amd64"})
	checkErrorSays(t, err, "larger than the 4 MiB limit", s.proxy.Addr, "app:1")
	if n := counted.n.Load(); n > 4<<20+1024 {
		t.Errorf("the client read %d bytes for a manifest", n)
	}
	checkNothingStored(t, s.store)
}

// TestResolveConfigBound: a manifest that declares a config of more than
// 4 MiB is refused before the config is fetched.
func TestResolveConfigBound(t *testing.T) {
	manifest := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:` + strings.Repeat("a", 64) + `","size":1073741824},"layers":[]}`)
	var blobRequests atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch {
		case strings.Contains(r.URL.Path, "/manifests/"):
			w.Header().Set("Content-Type", ocispec.MediaTypeImageManifest)
			w.Header().Set("Docker-Content-Digest", digest.FromBytes(manifest).String())
			w.Write(manifest)
		case strings.Contains(r.URL.Path, "/blobs/"):
			blobRequests.Add(1)
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(srv.Close)
	store, err := content.NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	reg := &source.Registries{Content: store}
	_, err = reg.Resolve(t.Context(), strings.TrimPrefix(srv.URL, "http://")+"/big:1", ocispec.Platform{OS: "linux", Architecture: "amd64"})
	checkErrorSays(t, err, "config of 1073741824 bytes", "4 MiB")
	if n := blobRequests.Load(); n != 0 {
		t.Errorf("the config was requested %d times", n)
	}
}

// testResume fetches a blob of size bytes through a proxy that resets the
// connection every resetEvery bytes: the download resumes with Range
// requests and completes, and the proxy sends at most 1.2 times the blob.
func testResume(t *testing.T, size, resetEvery int64) {
	s := newFaultSetup(t, size)
	s.proxy.Add(faultproxy.Fault{Kind: faultproxy.Reset, After: resetEvery, Path: "/blobs/", Method: http.MethodGet})
	start := time.Now()
	if err := s.reg.FetchBlob(t.Context(), s.ref, s.blob.desc()); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d bytes in %v through %d resets: the proxy sent %d bytes (%.3fx)", size, time.Since(start).Round(time.Millisecond),
		s.proxy.Injected(), s.proxy.Bytes(), float64(s.proxy.Bytes())/float64(size))
	if want := size / resetEvery; s.proxy.Injected() < want {
		t.Errorf("%d resets, want at least %d", s.proxy.Injected(), want)
	}
	if s.proxy.Bytes() > size*12/10 {
		t.Errorf("the proxy sent %d bytes for a %d byte blob, more than 1.2x", s.proxy.Bytes(), size)
	}
	if n, err := s.store.Info(s.blob.desc().Digest); err != nil || n != size {
		t.Errorf("stored blob: %d bytes, %v", n, err)
	}
}

// TestFetchBlobResumes: 20 MiB through a reset every 3 MiB.
func TestFetchBlobResumes(t *testing.T) {
	testResume(t, 20<<20, 3<<20)
}

// LargeTestsEnv enables tests that move a GiB or more.
const largeTestsEnv = "BUILDER_LARGE_TESTS"

// TestFetchBlobResumes1GiB: 1 GiB through a reset every 100 MiB, fetching
// at most 1.2 GiB. It needs about 2 GiB of disk and half a minute, so it
// runs only with BUILDER_LARGE_TESTS=1.
func TestFetchBlobResumes1GiB(t *testing.T) {
	if os.Getenv(largeTestsEnv) == "" || testing.Short() {
		t.Skip("moves 1 GiB: set " + largeTestsEnv + "=1 to run it")
	}
	testResume(t, 1<<30, 100<<20)
}

// TestFetchBlobEndless10KB: a registry streaming an endless body for a blob
// the manifest says is 10 KB is stopped one byte past it: the client reads
// well within 1 MiB past the declared size, and stores nothing.
func TestFetchBlobEndless10KB(t *testing.T) {
	s := newFaultSetup(t, 10<<10)
	s.proxy.Add(faultproxy.Fault{Kind: faultproxy.Endless, Path: "/blobs/", Method: http.MethodGet})
	counted := &countingTransport{}
	s.reg.Transport = counted
	err := s.reg.FetchBlob(t.Context(), s.ref, s.blob.desc())
	checkErrorSays(t, err, "more than the 10240 bytes", s.proxy.Addr, "app:1", s.blob.hash.String())
	if n := counted.n.Load(); n > 10<<10+1<<20 {
		t.Errorf("the client read %d bytes", n)
	}
	t.Logf("read %d bytes of an endless body: %v", counted.n.Load(), err)
	checkNothingStored(t, s.store)
}

// TestFetchBlobRangeIgnored: behind a registry that ignores Range headers
// (answers 200 with the whole blob), a download cut off mid-way starts
// again from the first byte and completes.
func TestFetchBlobRangeIgnored(t *testing.T) {
	blob := newGenLayer(t, 1<<20, 7)
	var ranged atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Range") != "" {
			ranged.Add(1)
		}
		if strings.Contains(r.URL.Path, "/blobs/") {
			w.Header().Set("Content-Length", strconv.FormatInt(blob.size, 10))
			io.Copy(w, blob.open())
		}
	}))
	t.Cleanup(srv.Close)
	p := faultproxy.New(strings.TrimPrefix(srv.URL, "http://"))
	t.Cleanup(p.Close)
	p.Add(faultproxy.Fault{Kind: faultproxy.Reset, After: 300 << 10, Path: "/blobs/", Times: 1})
	store, err := content.NewStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	reg := &source.Registries{Content: store, Retry: &source.RetryPolicy{Backoff: 10 * time.Millisecond, Attempts: 3}}
	ref, _ := name.ParseReference(p.Addr + "/app:1")
	if err := reg.FetchBlob(t.Context(), ref, blob.desc()); err != nil {
		t.Fatal(err)
	}
	if ranged.Load() == 0 {
		t.Error("the resumed download sent no Range header")
	}
	if n, err := store.Info(blob.desc().Digest); err != nil || n != blob.size {
		t.Errorf("stored: %d bytes, %v", n, err)
	}
}
