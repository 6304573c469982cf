package source

import (
	"context"
	"errors"
	"fmt"
	"github.com/docker/go-units"
	"io"
	"net"
	"net/http"
	"net/url"
	"sync"
	"time"
)

// DefaultDownloadTimeout bounds connecting to the server of an ADD <url>
// and each wait for it (response headers, then every read of the body).
const DefaultDownloadTimeout = 60 * time.Second

// DownloadOptions configures Download.
type DownloadOptions struct {
	// Timeout bounds connecting (TCP and TLS) and each silence of the
	// server: waiting for the response, and between two reads of the
	// body. Zero means DefaultDownloadTimeout.
	Timeout time.Duration
	// MaxSize, when positive, fails a download larger than this, before
	// it starts when the server says its size, else once past it.
	MaxSize int64
	// Progress, when set, receives a line about every Every with the
	// bytes fetched and the rate, and one at the end.
	Progress io.Writer
	Every    time.Duration
}

// errStalled is the cause of a download's context ending at its timeout.
var errStalled = errors.New("download stalled")

// Download fetches rawURL (http or https) into w, as Fetch does, with
// DownloadOptions' timeouts, size bound and progress. Errors say what failed
// without repeating the URL: "connecting: timed out after 1m0s", "no data
// from the server for 1m0s after 1.2 MB".
func Download(ctx context.Context, rawURL string, w io.Writer, opt DownloadOptions) (Fetched, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return Fetched{}, err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return Fetched{}, fmt.Errorf("unsupported URL scheme %q", u.Scheme)
	}
	timeout := opt.Timeout
	if timeout <= 0 {
		timeout = DefaultDownloadTimeout
	}
	// The watchdog ends the request when the server is silent for too long
	// at any stage; each byte received pushes it back.
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	dog := newWatchdog(timeout, func() { cancel(errStalled) })
	defer dog.stop()

	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return Fetched{}, err
	}
	resp, err := downloadClient(timeout).Do(req)
	if err != nil {
		return Fetched{}, downloadError(ctx, "waiting for the server", timeout, 0, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return Fetched{}, fmt.Errorf("the server answered %s", resp.Status)
	}
	if opt.MaxSize > 0 && resp.ContentLength > opt.MaxSize {
		return Fetched{}, fmt.Errorf("the file is %s, more than the limit of %s (--http-max-size)", units.HumanSize(float64(resp.ContentLength)), units.HumanSize(float64(opt.MaxSize)))
	}
	pr := &progressReader{r: resp.Body, dog: dog, total: resp.ContentLength, start: time.Now(), out: opt.Progress, every: opt.Every}
	var body io.Reader = pr
	if opt.MaxSize > 0 {
		body = io.LimitReader(pr, opt.MaxSize+1)
	}
	n, err := io.Copy(w, body)
	if err != nil {
		return Fetched{}, downloadError(ctx, "downloading", timeout, n, err)
	}
	if opt.MaxSize > 0 && n > opt.MaxSize {
		return Fetched{}, fmt.Errorf("downloading: the file is larger than the limit of %s (--http-max-size)", units.HumanSize(float64(opt.MaxSize)))
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return Fetched{}, fmt.Errorf("downloading: got %d bytes of %d", n, resp.ContentLength)
	}
	pr.report(true)
	f := Fetched{Size: n}
	if lm := resp.Header.Get("Last-Modified"); lm != "" {
		if t, err := http.ParseTime(lm); err == nil {
			f.LastModified = t.UTC()
		}
	}
	return f, nil
}

// downloadError explains a failed request or read: a stall, an
// interruption (naming how far it got) or the network error itself.
func downloadError(ctx context.Context, stage string, timeout time.Duration, n int64, err error) error {
	switch cause := context.Cause(ctx); {
	case errors.Is(cause, errStalled) && n == 0:
		return fmt.Errorf("%s: no answer for %s (timed out)", stage, timeout)
	case errors.Is(cause, errStalled):
		return fmt.Errorf("%s: no data from the server for %s after %s (timed out)", stage, timeout, units.HumanSize(float64(n)))
	case cause != nil:
		// Not wrapped: the solver would take a wrapped context.Canceled for
		// a step stopped because another failed, and not name this one.
		return fmt.Errorf("%s: interrupted after %s (%v)", stage, units.HumanSize(float64(n)), cause)
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("%s: timed out after %s: %w", stage, timeout, err)
	}
	if n > 0 {
		return fmt.Errorf("%s: %w", stage, err)
	}
	return err
}

// downloadClient proxies as Go does by default (HTTP_PROXY, HTTPS_PROXY,
// NO_PROXY), follows redirects, and bounds connecting by timeout (the
// watchdog bounds the waits after).
func downloadClient(timeout time.Duration) *http.Client {
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.DialContext = (&net.Dialer{Timeout: timeout, KeepAlive: 30 * time.Second}).DialContext
	t.TLSHandshakeTimeout = timeout
	return &http.Client{Transport: t}
}

// watchdog calls fire once it has not been kicked for timeout.
type watchdog struct {
	mu      sync.Mutex
	t       *time.Timer
	timeout time.Duration
}

func newWatchdog(timeout time.Duration, fire func()) *watchdog {
	return &watchdog{t: time.AfterFunc(timeout, fire), timeout: timeout}
}

func (d *watchdog) kick() {
	d.mu.Lock()
	d.t.Reset(d.timeout)
	d.mu.Unlock()
}

func (d *watchdog) stop() { d.t.Stop() }

// progressReader counts what is read, kicks the watchdog and writes
// progress lines.
type progressReader struct {
	r           io.Reader
	dog         *watchdog
	n, total    int64
	start, last time.Time
	out         io.Writer
	every       time.Duration
}

func (p *progressReader) Read(b []byte) (int, error) {
	n, err := p.r.Read(b)
	if n > 0 {
		p.dog.kick()
		p.n += int64(n)
		p.report(false)
	}
	return n, err
}

// report writes a progress line when one is due, or the final one.
func (p *progressReader) report(final bool) {
	if p.out == nil {
		return
	}
	now := time.Now()
	every := p.every
	if every <= 0 {
		every = time.Second
	}
	since := p.last
	if since.IsZero() {
		since = p.start
	}
	if !final && now.Sub(since) < every {
		return
	}
	p.last = now
	elapsed := now.Sub(p.start)
	rate := units.HumanSize(float64(p.n)/max(elapsed.Seconds(), 1e-3)) + "/s"
	switch {
	case final:
		fmt.Fprintf(p.out, "downloaded %s in %.2fs (%s)\n", units.HumanSize(float64(p.n)), elapsed.Seconds(), rate)
	case p.total >= 0:
		fmt.Fprintf(p.out, "downloading: %s of %s (%s)\n", units.HumanSize(float64(p.n)), units.HumanSize(float64(p.total)), rate)
	default:
		fmt.Fprintf(p.out, "downloading: %s (%s)\n", units.HumanSize(float64(p.n)), rate)
	}
}
