// Package loopback lets go-containerregistry reach a registry on the
// loopback interface over plain HTTP without trying TLS first.
//
// go-containerregistry pings a registry it may reach over HTTP (a loopback
// or --insecure-registry host) over https first and falls back to http
// when that fails. A plain-HTTP registry on loopback, the usual local and
// CI registry, then costs a TLS handshake it refuses on every ping (about
// 2.5 ms of CPU, and a ping per repository a build pulls from or pushes
// to).
package loopback

import (
	"net"
	"net/http"
	"strings"

	"github.com/google/go-containerregistry/pkg/name"
)

// Transport is inner, but a ping (GET /v2/) of a loopback registry over
// https is sent over plain HTTP first: when a registry answers it there
// (200, or 401 with its challenge), that answer is returned, as if the
// https ping had been redirected to http, and go-containerregistry reaches
// the registry over http from then on, as it would after its own fallback.
// When nothing answers it over plain HTTP (a loopback registry that
// serves TLS), the ping goes over https as asked.
//
// Only loopback hosts where go-containerregistry falls back to http
// anyway (its Registry.Scheme is http: localhost:port, 127.0.0.1, ::1): a
// registry elsewhere that answers both would be reached in plain text
// where go-containerregistry keeps to TLS, and so would a TLS registry named
// localhost (port 443) or 127.0.0.2 when a web server answers on port 80.
func Transport(inner http.RoundTripper) http.RoundTripper {
	return &pinger{inner: inner}
}

type pinger struct{ inner http.RoundTripper }

func (t *pinger) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.Method != http.MethodGet || req.URL.Scheme != "https" || req.URL.Path != "/v2/" || !plainFirst(req.URL.Host) {
		return t.inner.RoundTrip(req)
	}
	plain := req.Clone(req.Context())
	u := *req.URL
	u.Scheme = "http"
	plain.URL = &u
	resp, err := t.inner.RoundTrip(plain)
	if err == nil {
		if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
			// resp.Request is the plain request: go-containerregistry
			// takes the scheme the ping ended on from it.
			return resp, nil
		}
		resp.Body.Close()
	}
	return t.inner.RoundTrip(req)
}

// plainFirst says whether host is a loopback registry go-containerregistry
// tries over http after https. An --insecure-registry host is not known
// here; its ping keeps go-containerregistry's order.
func plainFirst(host string) bool {
	if !Is(host) {
		return false
	}
	reg, err := name.NewRegistry(host)
	return err == nil && reg.Scheme() == "http"
}

// Is reports whether host (a registry's "host[:port]") names the loopback
// interface: localhost, 127.0.0.0/8 or ::1.
func Is(host string) bool {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
