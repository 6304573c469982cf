package source

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"strconv"
	"syscall"
	"time"

	"github.com/builder-dev/builder/source/loopback"
	"github.com/builder-dev/builder/source/regping"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// Limits on what a registry may send: distribution refuses manifests over
// 4 MiB, so a larger one is a broken or hostile registry. Image configs get
// the same bound; blobs are bounded by their descriptor's size.
const (
	MaxManifestSize = 4 << 20
	MaxConfigSize   = 4 << 20
)

// RetryPolicy says how often and how patiently registry requests are
// retried.
type RetryPolicy struct {
	// Backoff is the wait before the first retry, doubled for each next one.
	Backoff time.Duration
	// Attempts bounds the tries of a request, and the consecutive tries of
	// a blob download that make no progress.
	Attempts int
	// MaxRetryAfter bounds how long a Retry-After header may make us wait.
	MaxRetryAfter time.Duration
}

// DefaultRetry retries for about 15 s in all.
var DefaultRetry = RetryPolicy{Backoff: 500 * time.Millisecond, Attempts: 5, MaxRetryAfter: 30 * time.Second}

// retryStatusCodes are the answers a retry may cure: timeouts, rate limits
// and server errors.
var retryStatusCodes = []int{
	http.StatusRequestTimeout, http.StatusTooManyRequests,
	http.StatusInternalServerError, http.StatusBadGateway,
	http.StatusServiceUnavailable, http.StatusGatewayTimeout,
}

// retryable reports whether err is a network failure a new request may not
// meet: a reset or closed connection, a timeout, a cut-off body.
func retryable(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var te *transport.Error
	if errors.As(err, &te) {
		return te.Temporary()
	}
	var ne net.Error
	return errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) ||
		errors.Is(err, syscall.EPIPE) || errors.Is(err, net.ErrClosed) ||
		(errors.As(err, &ne) && ne.Timeout())
}

func (p RetryPolicy) backoff() remote.Backoff {
	return remote.Backoff{Duration: p.Backoff, Factor: 2, Jitter: 0.1, Steps: p.Attempts}
}

// Transport is the HTTP transport of registry requests below auth: inner
// (nil for go-containerregistry's default) with Retry-After honoured, and
// requests that failed for a reason a retry may cure sent again with backoff,
// and a registry's ping answered from an earlier one (see regping).
func (p RetryPolicy) Transport(inner http.RoundTripper) http.RoundTripper {
	return regping.Transport(transport.NewRetry(p.transport(inner), transport.WithRetryBackoff(p.backoff()),
		transport.WithRetryPredicate(retryable), transport.WithRetryStatusCodes(retryStatusCodes...)))
}

// transport is the HTTP transport below Transport's retries: inner (nil for
// go-containerregistry's default) with Retry-After honoured and loopback
// registries pinged over plain HTTP.
func (p RetryPolicy) transport(inner http.RoundTripper) http.RoundTripper {
	if inner == nil {
		inner = remote.DefaultTransport
	}
	return &retryAfterTransport{inner: loopback.Transport(inner), max: p.MaxRetryAfter, attempts: p.Attempts}
}

// retryAfterTransport waits as long as a 429 or 503 answer's Retry-After
// asks (up to max) and sends the request again, when its body can be sent
// again.
type retryAfterTransport struct {
	inner    http.RoundTripper
	max      time.Duration
	attempts int
}

func (t *retryAfterTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	// go-containerregistry's bearer transport sends a request again, body
	// and all, after refreshing an expired token; the first send consumed
	// the body. Every send gets a fresh body where the request can make
	// one, so such a retry sends the content again, not nothing.
	if req.GetBody != nil && req.Body != nil && req.Body != http.NoBody {
		body, err := req.GetBody()
		if err != nil {
			return nil, err
		}
		req.Body.Close()
		req = req.Clone(req.Context())
		req.Body = body
	}
	for attempt := 1; ; attempt++ {
		resp, err := t.inner.RoundTrip(req)
		if err != nil || attempt >= t.attempts {
			return resp, err
		}
		if resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable {
			return resp, nil
		}
		wait, ok := parseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		if !ok || wait > t.max || (req.Body != nil && req.GetBody == nil) {
			return resp, nil
		}
		if req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return resp, nil
			}
			req = req.Clone(req.Context())
			req.Body = body
		}
		io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		select {
		case <-time.After(wait):
		case <-req.Context().Done():
			return nil, req.Context().Err()
		}
	}
}

// parseRetryAfter reads a Retry-After header: seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	if v == "" {
		return 0, false
	}
	if s, err := strconv.Atoi(v); err == nil && s >= 0 {
		return time.Duration(s) * time.Second, true
	}
	if t, err := http.ParseTime(v); err == nil {
		return max(t.Sub(now), 0), true
	}
	return 0, false
}

// sleepCtx waits d or until ctx is done.
func sleepCtx(ctx context.Context, d time.Duration) error {
	select {
	case <-time.After(d):
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
