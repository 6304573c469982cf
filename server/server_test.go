package server

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/builder-dev/builder/server/api"
	"github.com/builder-dev/builder/source/localctx"
)

// writeCert writes a certificate (signed by parent, or self-signed) and
// its key as PEM files in dir.
func writeCert(t *testing.T, dir, name string, isCA bool, parent *x509.Certificate, parentKey *ecdsa.PrivateKey) (*x509.Certificate, *ecdsa.PrivateKey) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")},
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		IsCA:        isCA, BasicConstraintsValid: true,
	}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	kb, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, name+".pem"), pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o600)
	os.WriteFile(filepath.Join(dir, name+"-key.pem"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kb}), 0o600)
	cert, _ := x509.ParseCertificate(der)
	return cert, key
}

func healthz(ctx context.Context, c *Client) error {
	resp, err := c.do(ctx, http.MethodGet, "/healthz", nil)
	if err == nil {
		resp.Body.Close()
	}
	return err
}

// TestTCPNeedsClientCertificate: over TCP the server asks for a client
// certificate signed by its CA; a client without one, or with one from
// another CA, is refused, and plain TCP is refused off loopback.
func TestTCPNeedsClientCertificate(t *testing.T) {
	dir := t.TempDir()
	ca, caKey := writeCert(t, dir, "ca", true, nil, nil)
	writeCert(t, dir, "server", false, ca, caKey)
	writeCert(t, dir, "client", false, ca, caKey)
	other, otherKey := writeCert(t, dir, "otherca", true, nil, nil)
	writeCert(t, dir, "stranger", false, other, otherKey)
	p := func(n string) string { return filepath.Join(dir, n) }

	srv, err := New(t.TempDir(), 0, Policy{}, nil)
	if err != nil {
		t.Fatal(err)
	}
	l, err := Listen("tcp://127.0.0.1:0", TLSFiles{CA: p("ca.pem"), Cert: p("server.pem"), Key: p("server-key.pem")}, false)
	if err != nil {
		t.Fatal(err)
	}
	hs := &http.Server{Handler: srv.Handler(), ErrorLog: nil}
	go hs.Serve(l)
	defer hs.Close()
	host := "tcp://" + l.Addr().String()
	ctx := t.Context()

	for name, files := range map[string]TLSFiles{
		"no certificate":     {CA: p("ca.pem")},
		"another CA's":       {CA: p("ca.pem"), Cert: p("stranger.pem"), Key: p("stranger-key.pem")},
		"plain HTTP, no TLS": {},
	} {
		c, err := Dial(host, files)
		if err != nil {
			t.Fatal(err)
		}
		if err := healthz(ctx, c); err == nil {
			t.Errorf("client with %s: /healthz succeeded, want refused", name)
		}
	}
	c, err := Dial(host, TLSFiles{CA: p("ca.pem"), Cert: p("client.pem"), Key: p("client-key.pem")})
	if err != nil {
		t.Fatal(err)
	}
	if err := healthz(ctx, c); err != nil {
		t.Errorf("client with a certificate of the CA: %v", err)
	}

	if _, err := Listen("tcp://127.0.0.1:0", TLSFiles{}, false); err == nil {
		t.Error("plain TCP without --insecure-listen: listening, want refused")
	}
	if _, err := Listen("tcp://0.0.0.0:0", TLSFiles{}, true); err == nil {
		t.Error("plain TCP with --insecure-listen on 0.0.0.0: listening, want refused")
	}
	l2, err := Listen("tcp://127.0.0.1:0", TLSFiles{}, true)
	if err != nil {
		t.Errorf("plain TCP with --insecure-listen on loopback: %v", err)
	} else {
		l2.Close()
	}
}

// TestQueuePlaces runs two builds on a server with --max-builds 1: the
// second waits, is told its place, and /metrics counts it as queued.
func TestQueuePlaces(t *testing.T) {
	started, finish := make(chan struct{}, 2), make(chan struct{})
	srv, err := New(t.TempDir(), 1, Policy{}, func(ctx context.Context, req *api.BuildRequest, contextDir, outDir string, em *Emitter) (*api.Result, error) {
		started <- struct{}{}
		<-finish
		return &api.Result{Digest: "sha256:" + strings.Repeat("0", 64)}, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	hs := httptest.NewServer(srv.Handler())
	defer hs.Close()
	c, err := Dial("tcp://"+strings.TrimPrefix(hs.URL, "http://"), TLSFiles{})
	if err != nil {
		t.Fatal(err)
	}
	ctxDir := t.TempDir()
	os.WriteFile(filepath.Join(ctxDir, "f"), []byte("x"), 0o644)
	tree, err := localctx.NewTree(ctxDir, nil)
	if err != nil {
		t.Fatal(err)
	}
	errs := make(chan error, 2)
	build := func(places chan<- int) {
		_, err := c.Build(t.Context(), Trees{Main: tree}, "", &api.BuildRequest{}, nil, Handlers{Queued: func(p int) { places <- p }})
		errs <- err
	}
	go build(make(chan int, 10))
	<-started
	places := make(chan int, 10)
	go build(places)
	select {
	case p := <-places:
		if p != 1 {
			t.Errorf("second build's place = %d, want 1", p)
		}
	case <-started:
		t.Fatal("second build started beside the first with --max-builds 1")
	case <-time.After(10 * time.Second):
		t.Fatal("second build was not told its place")
	}
	resp, err := c.do(t.Context(), http.MethodGet, "/metrics", nil)
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{"builder_builds_queued 1\n", "builder_builds_running 1\n"} {
		if !strings.Contains(string(m), want) {
			t.Errorf("/metrics lacks %q:\n%s", want, m)
		}
	}
	close(finish)
	for range 2 {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}

// TestPolicyRefuses: a client cannot grant itself an entitlement the
// operator did not, nor make the server read or write its own directories
// through a local cache.
func TestPolicyRefuses(t *testing.T) {
	p := Policy{Allow: []string{"network.host"}}
	for _, tc := range []struct {
		name string
		req  api.BuildRequest
		ok   bool
	}{
		{"plain", api.BuildRequest{}, true},
		{"granted entitlement", api.BuildRequest{Allow: []string{"network.host"}}, true},
		{"insecure not granted", api.BuildRequest{Allow: []string{"security.insecure"}}, false},
		{"cache-to local", api.BuildRequest{CacheTo: []string{"type=local,dest=/etc/x"}}, false},
		{"cache-from local", api.BuildRequest{CacheFrom: []string{"type=local,src=/root"}}, false},
		{"cache registry", api.BuildRequest{CacheTo: []string{"type=registry,ref=r.example/c:1"}}, true},
	} {
		if err := p.Check(&tc.req); (err == nil) != tc.ok {
			t.Errorf("%s: Check = %v, want ok %v", tc.name, err, tc.ok)
		}
	}
}
