package push

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// manifestAccept are the manifest types a tag may name.
var manifestAccept = strings.Join([]string{
	ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex,
	"application/vnd.docker.distribution.manifest.v2+json",
	"application/vnd.docker.distribution.manifest.list.v2+json",
}, ",")

func (s *session) url(kind, id string) string {
	return fmt.Sprintf("%s://%s/v2/%s/%s/%s", s.repo.Scheme(), s.repo.RegistryStr(), s.repo.RepositoryStr(), kind, id)
}

// do sends req and checks that the answer is one of ok; the body is
// drained and closed.
func (s *session) do(req *http.Request, ok ...int) (*http.Response, error) {
	s.mu.Lock()
	client := s.client // canMount may replace it
	s.mu.Unlock()
	resp, err := client.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if err := transport.CheckError(resp, ok...); err != nil {
		return resp, err
	}
	io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	return resp, nil
}

// headManifest returns the digest the registry has under id, "" if none.
func (s *session) headManifest(ctx context.Context, id string) (digest.Digest, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, s.url("manifests", id), nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", manifestAccept)
	resp, err := s.do(req, http.StatusOK)
	var te *transport.Error
	// A 403 for a missing tag is known of some registries
	// (go-containerregistry treats it the same).
	if errors.As(err, &te) && (te.StatusCode == http.StatusNotFound || te.StatusCode == http.StatusForbidden) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	d := digest.Digest(resp.Header.Get("Docker-Content-Digest"))
	if d.Validate() != nil {
		return "", nil // unknown: the manifest is put again
	}
	return d, nil
}

// headBlob says whether the repository has blob d.
func (s *session) headBlob(ctx context.Context, d digest.Digest) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodHead, s.url("blobs", d.String()), nil)
	if err != nil {
		return false, err
	}
	resp, err := s.do(req, http.StatusOK, http.StatusNotFound)
	if err != nil {
		return false, err
	}
	return resp.StatusCode == http.StatusOK, nil
}

// upload sends blob b, starting again (a new POST) when the connection
// failed: the registry may have dropped the upload session, so sending
// the content again to the same place may not do.
func (s *session) upload(ctx context.Context, b ocispec.Descriptor, from string) error {
	for attempt := 1; ; attempt++ {
		err := s.uploadOnce(ctx, b, from)
		var te *transport.Error
		if err == nil || ctx.Err() != nil || errors.As(err, &te) || attempt >= uploadAttempts {
			return err
		}
		select {
		case <-time.After(time.Duration(attempt) * 200 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// uploadAttempts bounds the tries of an upload whose connection failed
// (each request is retried below, too).
const uploadAttempts = 3

// uploadOnce sends blob b: a POST that mounts it from repository from (of
// the same registry) when from is not "", else starts an upload, then one
// PUT with the content.
func (s *session) uploadOnce(ctx context.Context, b ocispec.Descriptor, from string) error {
	q := url.Values{}
	if from != "" {
		q.Set("mount", b.Digest.String())
		q.Set("from", from)
	}
	loc, err := s.startUpload(ctx, q)
	if err != nil && from != "" {
		// Some registries refuse mounts outright; upload instead.
		loc, err = s.startUpload(ctx, nil)
	}
	if err != nil || loc == nil {
		return err // loc nil: mounted
	}
	v := loc.Query()
	v.Set("digest", b.Digest.String())
	loc.RawQuery = v.Encode()
	open := func() (io.ReadCloser, error) { return s.store.Open(b.Digest) }
	body, err := open()
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, loc.String(), body)
	if err != nil {
		body.Close()
		return err
	}
	req.ContentLength = b.Size
	req.GetBody = open
	req.Header.Set("Content-Type", "application/octet-stream")
	_, err = s.do(req, http.StatusCreated, http.StatusNoContent)
	return err
}

// startUpload posts to the uploads endpoint with query q. It returns where
// to send the content, or nil if the blob was mounted.
func (s *session) startUpload(ctx context.Context, q url.Values) (*url.URL, error) {
	u := s.url("blobs", "uploads/")
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, nil)
	if err != nil {
		return nil, err
	}
	resp, err := s.do(req, http.StatusCreated, http.StatusAccepted)
	if err != nil {
		return nil, err
	}
	if resp.StatusCode == http.StatusCreated {
		return nil, nil
	}
	return location(resp)
}

// putManifest puts raw, of media type mt, under id.
func (s *session) putManifest(ctx context.Context, id, mt string, raw []byte) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodPut, s.url("manifests", id), bytes.NewReader(raw))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", mt)
	if _, err := s.do(req, http.StatusOK, http.StatusCreated, http.StatusAccepted); err != nil {
		return fmt.Errorf("putting manifest %s: %w", id, err)
	}
	return nil
}

// location is where an upload goes on: the answer's Location, relative to
// the request. A registry may send it to another host (a storage service,
// or its own address spelled otherwise), but a public registry may not
// send it to a private or loopback address: that would make a hostile
// registry's answer aim the blob at an internal service.
func location(resp *http.Response) (*url.URL, error) {
	loc := resp.Header.Get("Location")
	if loc == "" {
		return nil, errors.New("upload started without a Location")
	}
	u, err := url.Parse(loc)
	if err != nil {
		return nil, fmt.Errorf("upload location %q: %w", loc, err)
	}
	u = resp.Request.URL.ResolveReference(u)
	if err := checkHost(resp.Request.Context(), resp.Request.URL.Hostname(), u.Hostname()); err != nil {
		return nil, fmt.Errorf("upload location %q: %w", loc, err)
	}
	return u, nil
}

// checkRedirect applies location's rule to redirects.
func checkRedirect(req *http.Request, via []*http.Request) error {
	if len(via) >= 10 {
		return errors.New("stopped after 10 redirects")
	}
	return checkHost(req.Context(), via[0].URL.Hostname(), req.URL.Hostname())
}

// checkHost refuses a request of registry host from sent on to an
// internal address literal to when from is public. A private registry
// may (a registry pushed to as localhost answering 127.0.0.1, or a LAN
// registry by name answering its address), as remote.Write and
// containerd allow; credentials are not at stake, go-containerregistry
// sends them to the registry's host only.
func checkHost(ctx context.Context, from, to string) error {
	if to == from {
		return nil
	}
	if addr, ok := parseIP(to); ok && internal(addr) && public(ctx, from) {
		return fmt.Errorf("registry %s sends the request to the private or loopback address %s: refused", from, to)
	}
	return nil
}

func internal(a netip.Addr) bool {
	return a.IsLoopback() || a.IsPrivate() || a.IsLinkLocalUnicast() || a.IsLinkLocalMulticast() || a.IsUnspecified()
}

// lookupHost resolves a registry's name; tests replace it.
var lookupHost = net.DefaultResolver.LookupNetIP

// public says whether a registry host is public: an address that is not
// internal, or a name with an address that is not (or none: one that
// does not resolve now counts as public).
func public(ctx context.Context, host string) bool {
	if a, ok := parseIP(host); ok {
		return !internal(a)
	}
	if h := strings.ToLower(host); h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return false
	}
	addrs, err := lookupHost(ctx, "ip", host)
	if err != nil || len(addrs) == 0 {
		return true
	}
	for _, a := range addrs {
		if !internal(a.WithZone("").Unmap()) {
			return true
		}
	}
	return false
}

// parseIP reads host as an IP address as the dialer would, including the
// legacy IPv4 forms (127.1, 0x7f.0.0.1, 2130706433).
func parseIP(host string) (netip.Addr, bool) {
	host, _, _ = strings.Cut(host, "%")
	if a, err := netip.ParseAddr(host); err == nil {
		return a.WithZone("").Unmap(), true
	}
	parts := strings.Split(host, ".")
	if len(parts) > 4 {
		return netip.Addr{}, false
	}
	var v uint64
	for i, p := range parts {
		bits := 8
		if i == len(parts)-1 {
			bits = 8 * (5 - len(parts))
		}
		n, err := strconv.ParseUint(p, 0, bits)
		if err != nil {
			return netip.Addr{}, false
		}
		v = v<<bits | n
	}
	return netip.AddrFrom4([4]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)}), true
}
