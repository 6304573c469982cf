// Package regping remembers registries' answers to go-containerregistry's
// ping (GET /v2/, which says whether and how to authenticate) for the
// requests of one context, a build's. Every authenticated transport
// go-containerregistry makes pings first: without this, a no-op build that
// resolves its base image and then finds its image already pushed asks the
// same registry twice (once per repository and purpose), a round trip of
// four.
package regping

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// TTL is how long an answer is reused. The answer changes only when the
// registry's authentication is reconfigured; a long build catches up
// within TTL.
var TTL = 30 * time.Second

// answer is what a ping's answer says: its status (200: no auth; 401: the
// challenge in header) and where it was answered (its scheme tells
// go-containerregistry whether to use plain HTTP).
type answer struct {
	status int
	header http.Header
	url    url.URL
	at     time.Time
}

// Memo is the answers remembered for one build.
type Memo struct {
	mu      sync.Mutex
	answers map[string]answer
	// flights holds pings in flight: a concurrent one waits for it (the
	// base image's resolution and a push started beside it).
	flights map[string]chan struct{}
}

type memoKey struct{}

// WithMemo returns ctx with a new Memo: pings sent through a Transport
// with a context derived from it share their answers.
func WithMemo(ctx context.Context) context.Context {
	return context.WithValue(ctx, memoKey{}, &Memo{answers: map[string]answer{}, flights: map[string]chan struct{}{}})
}

// Transport is inner with a ping answered from what an earlier ping of
// the same scheme and host with the same Memo (see WithMemo) was
// answered, for TTL. Only 200 and 401 answers are remembered: a failure
// is asked again. A request whose context has no Memo goes to inner.
func Transport(inner http.RoundTripper) http.RoundTripper { return memoTransport{inner} }

type memoTransport struct{ inner http.RoundTripper }

func (t memoTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	m, _ := req.Context().Value(memoKey{}).(*Memo)
	if m == nil || !isPing(req) {
		return t.inner.RoundTrip(req)
	}
	return m.ping(t.inner, req)
}

func (m *Memo) ping(inner http.RoundTripper, req *http.Request) (*http.Response, error) {
	key := req.URL.Scheme + "://" + req.URL.Host
	for {
		m.mu.Lock()
		if a, ok := m.answers[key]; ok && time.Since(a.at) < TTL {
			m.mu.Unlock()
			return a.response(req), nil
		}
		wait, busy := m.flights[key]
		if !busy {
			m.flights[key] = make(chan struct{})
			m.mu.Unlock()
			break
		}
		m.mu.Unlock()
		select {
		case <-wait:
		case <-req.Context().Done():
			return nil, req.Context().Err()
		}
		m.mu.Lock()
		_, ok := m.answers[key]
		m.mu.Unlock()
		if !ok {
			// The ping waited for failed: this one asks itself.
			return inner.RoundTrip(req)
		}
	}
	resp, err := inner.RoundTrip(req)
	m.mu.Lock()
	if err == nil && (resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized) {
		at := req.URL
		if resp.Request != nil && resp.Request.URL != nil {
			at = resp.Request.URL
		}
		m.answers[key] = answer{status: resp.StatusCode, header: resp.Header.Clone(), url: *at, at: time.Now()}
	}
	close(m.flights[key])
	delete(m.flights, key)
	m.mu.Unlock()
	return resp, err
}

// isPing says whether req is go-containerregistry's ping: an anonymous
// GET of /v2/.
func isPing(req *http.Request) bool {
	return req.Method == http.MethodGet && req.URL.Path == "/v2/" && req.URL.RawQuery == "" &&
		req.Header.Get("Authorization") == ""
}

// response is the remembered answer to req, as if the registry had sent
// it again (with an empty body).
func (a answer) response(req *http.Request) *http.Response {
	r := req.Clone(req.Context())
	u := a.url
	r.URL = &u
	return &http.Response{
		Status: fmt.Sprintf("%d %s", a.status, http.StatusText(a.status)), StatusCode: a.status,
		Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1,
		Header: a.header.Clone(), Body: http.NoBody, Request: r,
	}
}
