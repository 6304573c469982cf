package regping

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// registry starts a registry stub that answers pings with the status
// status() gives (401 with a bearer challenge), and counts pings and
// other requests.
func registry(t *testing.T, status func() int) (reg name.Registry, pings, others *atomic.Int32) {
	pings, others = &atomic.Int32{}, &atomic.Int32{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v2/" {
			others.Add(1)
			w.WriteHeader(http.StatusNotFound)
			return
		}
		pings.Add(1)
		s := status()
		if s == http.StatusUnauthorized {
			w.Header().Set("WWW-Authenticate", `Bearer realm="http://`+r.Host+`/token",service="test"`)
		}
		w.WriteHeader(s)
	}))
	t.Cleanup(srv.Close)
	reg, err := name.NewRegistry(strings.TrimPrefix(srv.URL, "http://"), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return reg, pings, others
}

// TestPingRemembered: pings of one registry through two Transports (the
// base image's resolution and the push) reach it once, and the second
// gets the same challenge, on the same scheme; a request that is no ping
// is always sent.
func TestPingRemembered(t *testing.T) {
	for _, status := range []int{http.StatusOK, http.StatusUnauthorized} {
		ctx := WithMemo(context.Background())
		reg, pings, others := registry(t, func() int { return status })
		var got []*transport.Challenge
		for range 2 {
			ch, err := transport.Ping(ctx, reg, Transport(http.DefaultTransport))
			if err != nil {
				t.Fatalf("ping answering %d: %v", status, err)
			}
			got = append(got, ch)
		}
		if n := pings.Load(); n != 1 {
			t.Errorf("ping answering %d: the registry was pinged %d times, want 1", status, n)
		}
		a, b := got[0], got[1]
		if a.Scheme != b.Scheme || a.Insecure != b.Insecure || a.Parameters["realm"] != b.Parameters["realm"] || !b.Insecure {
			t.Errorf("ping answering %d: remembered challenge %+v, first %+v (want equal, insecure)", status, b, a)
		}
		if status == http.StatusUnauthorized && b.Scheme != "bearer" {
			t.Errorf("remembered challenge scheme %q, want bearer", b.Scheme)
		}
		for range 2 {
			resp, err := Transport(http.DefaultTransport).RoundTrip(mustGet(t, ctx, "http://"+reg.RegistryStr()+"/v2/app/manifests/1"))
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
		}
		if n := others.Load(); n != 2 {
			t.Errorf("%d of 2 manifest requests reached the registry", n)
		}
	}
}

// TestPingFailureAskedAgain: an answer other than 200 or 401 is not
// remembered, and an answer older than TTL is asked for again.
func TestPingFailureAskedAgain(t *testing.T) {
	var status atomic.Int32
	status.Store(http.StatusServiceUnavailable)
	reg, pings, _ := registry(t, func() int { return int(status.Load()) })
	rt := Transport(http.DefaultTransport)
	ctx := WithMemo(context.Background())
	if _, err := transport.Ping(ctx, reg, rt); err == nil {
		t.Fatal("ping answered 503: no error")
	}
	status.Store(http.StatusOK)
	if _, err := transport.Ping(ctx, reg, rt); err != nil {
		t.Fatal(err)
	}
	if n := pings.Load(); n != 2 {
		t.Errorf("after a 503: %d pings, want 2 (a failure is not remembered)", n)
	}
	defer func(ttl time.Duration) { TTL = ttl }(TTL)
	TTL = 0
	status.Store(http.StatusUnauthorized)
	ch, err := transport.Ping(ctx, reg, rt)
	if err != nil {
		t.Fatal(err)
	}
	if n := pings.Load(); n != 3 || ch.Scheme != "bearer" {
		t.Errorf("past TTL: %d pings, challenge %q; want 3 and the registry's new bearer challenge", n, ch.Scheme)
	}
}

// TestPingConcurrent: pings sent at once wait for the first one's answer.
// Pings without the Memo in their context all reach the registry.
func TestPingConcurrent(t *testing.T) {
	reg, pings, _ := registry(t, func() int { time.Sleep(20 * time.Millisecond); return http.StatusOK })
	ctx := WithMemo(context.Background())
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := transport.Ping(ctx, reg, Transport(http.DefaultTransport)); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	if n := pings.Load(); n != 1 {
		t.Errorf("8 concurrent pings reached the registry %d times, want 1", n)
	}
	for range 2 {
		if _, err := transport.Ping(context.Background(), reg, Transport(http.DefaultTransport)); err != nil {
			t.Fatal(err)
		}
	}
	if n := pings.Load(); n != 3 {
		t.Errorf("2 pings without a Memo: the registry saw %d pings in all, want 3", n)
	}
}

func mustGet(t *testing.T, ctx context.Context, u string) *http.Request {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return req
}
