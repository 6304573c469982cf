package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"time"
)

// Fetched describes a completed download.
type Fetched struct {
	Size int64
	// LastModified is the response's Last-Modified time; zero when it has
	// none (or an unreadable one).
	LastModified time.Time
}

// httpClient proxies as Go does by default (HTTP_PROXY, HTTPS_PROXY,
// NO_PROXY) and follows redirects.
var httpClient = &http.Client{Transport: http.DefaultTransport}

// Fetch downloads rawURL (http or https) into w. Errors say what happened
// without repeating the URL: "connection refused", "404 Not Found".
func Fetch(ctx context.Context, rawURL string, w io.Writer) (Fetched, error) {
	u, err := url.Parse(rawURL)
	if err != nil {
		return Fetched{}, err
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return Fetched{}, fmt.Errorf("unsupported URL scheme %q", u.Scheme)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, rawURL, nil)
	if err != nil {
		return Fetched{}, err
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			return Fetched{}, ue.Err
		}
		return Fetched{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return Fetched{}, fmt.Errorf("the server answered %s", resp.Status)
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return Fetched{}, fmt.Errorf("downloading: %w", err)
	}
	if resp.ContentLength >= 0 && n != resp.ContentLength {
		return Fetched{}, fmt.Errorf("downloading: got %d bytes of %d", n, resp.ContentLength)
	}
	f := Fetched{Size: n}
	if lm := resp.Header.Get("Last-Modified"); lm != "" {
		if t, err := http.ParseTime(lm); err == nil {
			f.LastModified = t.UTC()
		}
	}
	return f, nil
}
