package loopback

import (
	"context"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// registry starts a plain-HTTP registry stub on loopback that answers
// pings with status, and counts the connections made to it.
func registry(t *testing.T, status int) (host string, conns *atomic.Int32) {
	conns = &atomic.Int32{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if status == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="http://`+r.Host+`/token",service="test"`)
		}
		w.WriteHeader(status)
	}))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	return strings.TrimPrefix(srv.URL, "http://"), conns
}

// TestPingLoopbackOverHTTP: go-containerregistry's ping of a plain-HTTP
// loopback registry, through Transport, is one plain-HTTP connection, not
// a refused TLS handshake first, and the registry is then reached over
// http (an open registry and one that asks for a token alike).
func TestPingLoopbackOverHTTP(t *testing.T) {
	for _, status := range []int{http.StatusOK, http.StatusUnauthorized} {
		host, conns := registry(t, status)
		inner := http.DefaultTransport.(*http.Transport).Clone()
		defer inner.CloseIdleConnections()
		reg, err := name.NewRegistry(host)
		if err != nil {
			t.Fatal(err)
		}
		ch, err := transport.Ping(context.Background(), reg, Transport(inner))
		if err != nil {
			t.Fatalf("ping answering %d: %v", status, err)
		}
		if !ch.Insecure {
			t.Errorf("ping answering %d: the registry is to be reached over https, want http", status)
		}
		if n := conns.Load(); n != 1 {
			t.Errorf("ping answering %d: %d connections (a TLS attempt first?), want 1", status, n)
		}
	}
}

// TestPingLoopbackTLS: a loopback registry that serves only TLS is still
// reached over https.
func TestPingLoopbackTLS(t *testing.T) {
	srv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {}))
	defer srv.Close()
	reg, err := name.NewRegistry(strings.TrimPrefix(srv.URL, "https://"))
	if err != nil {
		t.Fatal(err)
	}
	ch, err := transport.Ping(context.Background(), reg, Transport(srv.Client().Transport))
	if err != nil {
		t.Fatal(err)
	}
	if ch.Insecure {
		t.Errorf("a TLS registry is to be reached over http, want https")
	}
}

// schemes records the schemes of the requests it gets, and answers 200.
type schemes []string

func (s *schemes) RoundTrip(req *http.Request) (*http.Response, error) {
	*s = append(*s, req.URL.Scheme)
	return &http.Response{StatusCode: http.StatusOK, Body: http.NoBody, Request: req}, nil
}

// TestPingPlainFirstOnly: the ping goes over plain HTTP first only where
// go-containerregistry would fall back to http (its Registry.Scheme is
// http); elsewhere, a registry named localhost (port 443) or 127.0.0.2, it goes
// over https only.
func TestPingPlainFirstOnly(t *testing.T) {
	for host, want := range map[string]string{
		"localhost:5000": "http", "127.0.0.1:5000": "http", "[::1]:5000": "http",
		"localhost": "https", "127.0.0.2:5000": "https", "localhost:443": "http",
		"registry.example:5000": "https", "10.0.0.1:5000": "https",
	} {
		var got schemes
		req, err := http.NewRequest(http.MethodGet, "https://"+host+"/v2/", nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := Transport(&got).RoundTrip(req); err != nil {
			t.Fatal(err)
		}
		if len(got) != 1 || got[0] != want {
			t.Errorf("ping of %s sent over %v, want %s only", host, got, want)
		}
	}
}

func TestIs(t *testing.T) {
	for host, want := range map[string]bool{
		"localhost:5000": true, "LOCALHOST": true, "127.0.0.1:5000": true, "127.1.2.3": true,
		"[::1]:5000": true, "::1": true,
		"10.0.0.1:5000": false, "192.168.1.1": false, "registry.example.com": false,
		"127.0.0.1.nip.io:5000": false, "localhost.example.com": false, "[::2]:5000": false,
	} {
		if got := Is(host); got != want {
			t.Errorf("Is(%q) = %v, want %v", host, got, want)
		}
	}
}
