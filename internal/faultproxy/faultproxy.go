// Package faultproxy is an HTTP reverse proxy for tests that sits in front
// of a registry (Debian's docker-registry in the tests) and injects the
// faults of a misbehaving registry or mirror: error answers (5xx, 429 with
// Retry-After), connections reset in the middle of a body, slow trickles,
// corrupted and endless bodies, and bearer tokens that expire after a
// number of requests. It counts the body bytes it sends, so a test can
// check how much a client fetched in all.
package faultproxy

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Kind is what a fault does to a matching request.
type Kind int

const (
	// Status answers Status (with Header) instead of forwarding.
	Status Kind = iota
	// Reset forwards the request but resets the connection (TCP RST) once
	// After bytes of the response body were sent; for a request with a
	// body (an upload), once After bytes of it were received.
	Reset
	// Trickle forwards the response body Chunk bytes at a time, waiting
	// Delay between chunks.
	Trickle
	// Corrupt forwards the response with the byte at offset After of the
	// body flipped.
	Corrupt
	// Endless answers 200 with a body that never ends.
	Endless
)

// Fault is one kind of misbehaviour for requests whose method is Method
// (any when empty) and whose path contains Path.
type Fault struct {
	Kind   Kind
	Method string
	Path   string
	// Skip lets this many matching requests through unharmed first; Times
	// bounds how many get the fault after that (0: all of them).
	Skip, Times int

	Status int
	Header http.Header
	After  int64
	Chunk  int
	Delay  time.Duration

	seen int
}

// Proxy is a running fault-injecting proxy.
type Proxy struct {
	// Addr is the proxy's "127.0.0.1:PORT".
	Addr string

	upstream *url.URL
	srv      *httptest.Server
	rp       *httputil.ReverseProxy

	mu     sync.Mutex
	faults []*Fault
	auth   *tokenAuth

	bytes    atomic.Int64
	requests atomic.Int64
	injected atomic.Int64
}

// New starts a proxy in front of the registry at upstream ("HOST:PORT",
// plain HTTP) on a loopback port. Close it when done.
func New(upstream string) *Proxy {
	u := &url.URL{Scheme: "http", Host: upstream}
	p := &Proxy{upstream: u}
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(r *httputil.ProxyRequest) {
			r.SetURL(u)
			// The registry builds Location headers from Host: keep ours.
			r.Out.Host = r.In.Host
		},
		FlushInterval: -1,
		ErrorLog:      log.New(io.Discard, "", 0),
	}
	p.srv = httptest.NewServer(p)
	p.srv.Config.ErrorLog = log.New(io.Discard, "", 0)
	p.Addr = strings.TrimPrefix(p.srv.URL, "http://")
	return p
}

// Close stops the proxy.
func (p *Proxy) Close() { p.srv.Close() }

// Add installs faults; the first matching fault with uses left applies.
func (p *Proxy) Add(faults ...Fault) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range faults {
		f := faults[i]
		p.faults = append(p.faults, &f)
	}
}

// Clear removes every fault.
func (p *Proxy) Clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.faults = nil
}

// Bytes is how many response body bytes the proxy has sent to clients.
func (p *Proxy) Bytes() int64 { return p.bytes.Load() }

// Requests is how many requests the proxy has received.
func (p *Proxy) Requests() int64 { return p.requests.Load() }

// Injected is how many faults the proxy has injected.
func (p *Proxy) Injected() int64 { return p.injected.Load() }

// ResetCounters sets Bytes, Requests and Injected back to zero.
func (p *Proxy) ResetCounters() {
	p.bytes.Store(0)
	p.requests.Store(0)
	p.injected.Store(0)
}

// fault returns the fault for r, if any, and uses it up.
func (p *Proxy) fault(r *http.Request) *Fault {
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, f := range p.faults {
		if (f.Method != "" && f.Method != r.Method) || !strings.Contains(r.URL.Path, f.Path) {
			continue
		}
		f.seen++
		if f.seen <= f.Skip || (f.Times > 0 && f.seen > f.Skip+f.Times) {
			continue
		}
		p.injected.Add(1)
		return f
	}
	return nil
}

func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.requests.Add(1)
	p.mu.Lock()
	auth := p.auth
	p.mu.Unlock()
	if auth != nil && !auth.check(w, r) {
		return
	}
	f := p.fault(r)
	cw := &countingWriter{ResponseWriter: w, p: p}
	if f == nil {
		p.rp.ServeHTTP(cw, r)
		return
	}
	switch f.Kind {
	case Status:
		for k, v := range f.Header {
			w.Header()[k] = v
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(f.Status)
		fmt.Fprintf(cw, `{"errors":[{"code":"UNKNOWN","message":"injected by faultproxy: %d"}]}`, f.Status)
	case Endless:
		w.Header().Set("Content-Type", "application/octet-stream")
		w.WriteHeader(http.StatusOK)
		buf := make([]byte, 32<<10)
		for r.Context().Err() == nil {
			if _, err := cw.Write(buf); err != nil {
				return
			}
		}
	case Reset:
		if r.ContentLength != 0 && r.Body != nil && r.Body != http.NoBody {
			// An upload: cut it off After bytes in, before it reaches the
			// registry.
			io.CopyN(io.Discard, r.Body, f.After)
			(&faultWriter{countingWriter: cw, f: f}).reset()
			return
		}
		p.rp.ServeHTTP(&faultWriter{countingWriter: cw, f: f, limit: f.After}, r)
	default:
		p.rp.ServeHTTP(&faultWriter{countingWriter: cw, f: f}, r)
	}
}

// countingWriter counts body bytes. Once hijacked it writes and flushes
// nothing (the reverse proxy may still flush from a timer).
type countingWriter struct {
	http.ResponseWriter
	p        *Proxy
	mu       sync.Mutex
	hijacked bool
}

func (w *countingWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.hijacked {
		return 0, net.ErrClosed
	}
	n, err := w.ResponseWriter.Write(b)
	w.p.bytes.Add(int64(n))
	return n, err
}

func (w *countingWriter) Flush() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if f, ok := w.ResponseWriter.(http.Flusher); ok && !w.hijacked {
		f.Flush()
	}
}

// faultWriter applies a Reset, Trickle or Corrupt fault to a forwarded
// body.
type faultWriter struct {
	*countingWriter
	f       *Fault
	written int64
	limit   int64 // for Reset
	dead    bool
}

func (w *faultWriter) Write(b []byte) (int, error) {
	if w.dead {
		return 0, net.ErrClosed
	}
	switch w.f.Kind {
	case Reset:
		if w.written+int64(len(b)) >= w.limit {
			n, _ := w.countingWriter.Write(b[:w.limit-w.written])
			w.written += int64(n)
			w.reset()
			return n, net.ErrClosed
		}
	case Corrupt:
		if off := w.f.After - w.written; off >= 0 && off < int64(len(b)) {
			c := append([]byte(nil), b...)
			c[off] ^= 0xff
			b = c
		}
	case Trickle:
		total := 0
		for len(b) > 0 {
			n := min(len(b), max(w.f.Chunk, 1))
			m, err := w.countingWriter.Write(b[:n])
			total += m
			w.written += int64(m)
			if err != nil {
				return total, err
			}
			w.Flush()
			b = b[n:]
			time.Sleep(w.f.Delay)
		}
		return total, nil
	}
	n, err := w.countingWriter.Write(b)
	w.written += int64(n)
	return n, err
}

// reset sends what was written and closes the connection with a TCP RST.
func (w *faultWriter) reset() {
	w.dead = true
	w.Flush()
	hj, ok := w.ResponseWriter.(http.Hijacker)
	if !ok {
		panic(http.ErrAbortHandler)
	}
	w.mu.Lock()
	w.hijacked = true
	conn, bufrw, err := hj.Hijack()
	w.mu.Unlock()
	if err != nil {
		panic(http.ErrAbortHandler)
	}
	bufrw.Flush()
	if tc, ok := conn.(*net.TCPConn); ok {
		drain(tc, 2*time.Second)
		tc.SetLinger(0)
	}
	conn.Close()
}

// tokenAuth makes the proxy a bearer-token registry (as Docker Hub and most
// cloud registries are) in front of a registry with basic auth: clients get
// tokens for user:pass from /token, each good for a number of requests.
type tokenAuth struct {
	user, pass string
	uses       int
	mu         sync.Mutex
	tokens     map[string]int // token -> requests left
	issued     int
}

// TokenAuth makes clients authenticate with bearer tokens that the proxy
// issues at /token for user:pass and that expire after uses requests;
// requests are forwarded with basic auth user:pass. uses <= 0 turns token
// auth off again: requests are forwarded as they come.
func (p *Proxy) TokenAuth(user, pass string, uses int) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.auth = nil
	if uses > 0 {
		p.auth = &tokenAuth{user: user, pass: pass, uses: uses, tokens: map[string]int{}}
	}
}

// TokensIssued is how many tokens the proxy has handed out.
func (p *Proxy) TokensIssued() int {
	p.mu.Lock()
	a := p.auth
	p.mu.Unlock()
	if a == nil {
		return 0
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.issued
}

// check serves /token, or checks r's bearer token and replaces it with
// basic auth for the registry. It reports whether to forward r.
func (a *tokenAuth) check(w http.ResponseWriter, r *http.Request) bool {
	if r.URL.Path == "/token" {
		if u, pw, ok := r.BasicAuth(); !ok || u != a.user || pw != a.pass {
			http.Error(w, "bad credentials", http.StatusUnauthorized)
			return false
		}
		b := make([]byte, 16)
		rand.Read(b)
		tok := hex.EncodeToString(b)
		a.mu.Lock()
		a.tokens[tok] = a.uses
		a.issued++
		a.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"token": tok, "expires_in": 300})
		return false
	}
	tok, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	a.mu.Lock()
	left, known := a.tokens[tok]
	if ok && known && left > 0 {
		a.tokens[tok] = left - 1
	}
	a.mu.Unlock()
	if !ok || !known || left <= 0 {
		challenge := fmt.Sprintf(`Bearer realm="http://%s/token",service="faultproxy"`, r.Host)
		if repo := repoOf(r.URL.Path); repo != "" {
			challenge += fmt.Sprintf(`,scope="repository:%s:pull,push"`, repo)
		}
		w.Header().Set("WWW-Authenticate", challenge)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		io.WriteString(w, `{"errors":[{"code":"UNAUTHORIZED","message":"token missing or expired"}]}`)
		return false
	}
	r.SetBasicAuth(a.user, a.pass)
	return true
}

// repoOf returns REPO of /v2/REPO/{blobs,manifests,tags}/...
func repoOf(p string) string {
	p = strings.TrimPrefix(p, "/v2/")
	for _, sep := range []string{"/blobs/", "/manifests/", "/tags/"} {
		if i := strings.Index(p, sep); i >= 0 {
			return p[:i]
		}
	}
	return ""
}
