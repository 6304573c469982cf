package build_test

import (
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/internal/faultproxy"
	"github.com/builder-dev/builder/internal/testutil"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/validate"
	"github.com/opencontainers/go-digest"
)

const faultUser, faultPass = "tester", "s3cret"

// faultRegistry is docker-registry holding the busybox base image as
// base/busybox:1, behind a fault proxy the builds talk to.
func faultRegistry(t *testing.T) (upstream string, p *faultproxy.Proxy) {
	t.Helper()
	upstream = testutil.DistributionRegistry(t, faultUser, faultPass)
	testutil.PushImage(t, testutil.BusyboxImage(t), upstream+"/base/busybox:1",
		remote.WithAuth(&authn.Basic{Username: faultUser, Password: faultPass}))
	p = faultproxy.New(upstream)
	t.Cleanup(p.Close)
	t.Setenv("DOCKER_CONFIG", testutil.DockerConfig(t, p.Addr, faultUser, faultPass))
	return upstream, p
}

var retryAfter1 = http.Header{"Retry-After": {"1"}}

// TestPullFaults builds FROM an image behind the fault proxy, once per
// fault. Transient faults are retried, resumed or re-fetched, and the
// build's file tree is the base's; a lasting fault fails the build naming
// the registry, the image, the status and what to do, and leaves no blob
// behind.
func TestPullFaults(t *testing.T) {
	testutil.RequiresRoot(t)
	_, p := faultRegistry(t)
	tests := []struct {
		name    string
		faults  []faultproxy.Fault
		tokens  int // > 0: bearer tokens that expire after this many requests
		wantErr []string
	}{
		{name: "503 twice", faults: []faultproxy.Fault{{Kind: faultproxy.Status, Status: 503, Path: "/blobs/", Times: 2}}},
		{name: "429 Retry-After", faults: []faultproxy.Fault{{Kind: faultproxy.Status, Status: 429, Header: retryAfter1, Path: "/manifests/", Times: 1}}},
		{name: "reset mid-blob", faults: []faultproxy.Fault{{Kind: faultproxy.Reset, After: 100 << 10, Path: "/blobs/", Method: http.MethodGet}}},
		{name: "trickle", faults: []faultproxy.Fault{{Kind: faultproxy.Trickle, Chunk: 64 << 10, Delay: 2 * time.Millisecond, Path: "/blobs/"}}},
		{name: "corrupt once", faults: []faultproxy.Fault{{Kind: faultproxy.Corrupt, After: 1000, Path: "/blobs/", Method: http.MethodGet, Times: 1}}},
		{name: "token expiry", tokens: 2},
		{name: "503 always", faults: []faultproxy.Fault{{Kind: faultproxy.Status, Status: 503, Path: "/blobs/"}},
			wantErr: []string{p.Addr, "base/busybox:1", "503 Service Unavailable", "try again later"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p.Clear()
			p.TokenAuth("", "", 0)
			if tt.tokens > 0 {
				p.TokenAuth(faultUser, faultPass, tt.tokens)
			}
			p.Add(tt.faults...)
			p.ResetCounters()
			st := openState(t, t.TempDir())
			ctxDir := writeContext(t, map[string]string{"f": "from the context"})
			res, err := st.Build(t.Context(), build.Options{
				ContextDir: ctxDir, Dockerfile: []byte("FROM " + p.Addr + "/base/busybox:1\nCOPY f /f\n"),
			})
			t.Logf("%d requests, %d faults, %d tokens: %v", p.Requests(), p.Injected(), p.TokensIssued(), err)
			if p.Injected() == 0 && tt.tokens == 0 {
				t.Error("no fault was injected")
			}
			if tt.tokens > 0 && p.TokensIssued() < 2 {
				t.Errorf("%d tokens issued; the first should have expired", p.TokensIssued())
			}
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatal("the build succeeded")
				}
				for _, want := range tt.wantErr {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error does not say %q: %v", want, err)
					}
				}
				if left, _ := filepath.Glob(filepath.Join(st.Content.Root(), "ingest", "*")); len(left) > 0 {
					t.Errorf("ingest files left: %v", left)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if got := builtFiles(t, st, res.Manifest)["f"].content; got != "from the context" {
				t.Errorf("f = %q", got)
			}
		})
	}
}

// TestPushFaults builds and pushes through the fault proxy, once per
// fault, then reads the image back from the registry itself.
func TestPushFaults(t *testing.T) {
	testutil.RequiresRoot(t)
	upstream, p := faultRegistry(t)
	tests := []struct {
		name    string
		faults  []faultproxy.Fault
		tokens  int
		wantErr []string
	}{
		{name: "503 on upload", faults: []faultproxy.Fault{{Kind: faultproxy.Status, Status: 503, Method: http.MethodPut, Path: "/blobs/uploads/", Times: 1}}},
		{name: "503 on manifest", faults: []faultproxy.Fault{{Kind: faultproxy.Status, Status: 503, Method: http.MethodPut, Path: "/manifests/", Times: 1}}},
		{name: "429 Retry-After", faults: []faultproxy.Fault{{Kind: faultproxy.Status, Status: 429, Header: retryAfter1, Method: http.MethodPost, Times: 1}}},
		{name: "reset mid-upload", faults: []faultproxy.Fault{{Kind: faultproxy.Reset, After: 10, Method: http.MethodPut, Path: "/blobs/uploads/", Times: 1}}},
		{name: "token expiry", tokens: 3},
		{name: "503 always", faults: []faultproxy.Fault{{Kind: faultproxy.Status, Status: 503, Method: http.MethodPut, Path: "/blobs/uploads/"}},
			wantErr: []string{p.Addr, "503 Service Unavailable", "try again later"}},
	}
	for i, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p.Clear()
			p.TokenAuth("", "", 0)
			st := openState(t, t.TempDir())
			ctxDir := writeContext(t, map[string]string{"f": "push " + tt.name})
			tag := p.Addr + "/team/app:" + string(rune('a'+i))
			if tt.tokens > 0 {
				p.TokenAuth(faultUser, faultPass, tt.tokens)
			}
			p.Add(tt.faults...)
			p.ResetCounters()
			res, err := st.Build(t.Context(), build.Options{
				ContextDir: ctxDir, Dockerfile: []byte("FROM " + p.Addr + "/base/busybox:1\nCOPY f /f\n"),
				Tags: []string{tag}, Push: true,
			})
			t.Logf("%d requests, %d faults, %d tokens: %v", p.Requests(), p.Injected(), p.TokensIssued(), err)
			if p.Injected() == 0 && tt.tokens == 0 {
				t.Error("no fault was injected")
			}
			if len(tt.wantErr) > 0 {
				if err == nil {
					t.Fatal("the push succeeded")
				}
				for _, want := range tt.wantErr {
					if !strings.Contains(err.Error(), want) {
						t.Errorf("error does not say %q: %v", want, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			ref, err := name.ParseReference(strings.Replace(tag, p.Addr, upstream, 1))
			if err != nil {
				t.Fatal(err)
			}
			img, err := remote.Image(ref, remote.WithAuth(&authn.Basic{Username: faultUser, Password: faultPass}))
			if err != nil {
				t.Fatal(err)
			}
			if err := validate.Image(img); err != nil {
				t.Errorf("pushed image: %v", err)
			}
			if d, _ := img.Digest(); digest.Digest(d.String()) != res.Manifest.Digest {
				t.Errorf("registry has %s, the build made %s", d, res.Manifest.Digest)
			}
		})
	}
}
