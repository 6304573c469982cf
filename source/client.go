package source

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"

	"github.com/builder-dev/builder/cache/content"
	"github.com/builder-dev/builder/internal/blobstream"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// repoClient reads one repository of a registry: manifests with a size
// cap, blobs bounded by their descriptor and resumed with HTTP ranges.
type repoClient struct {
	ref    name.Reference // what the user asked for, for messages
	repo   name.Repository
	client *http.Client
	policy RetryPolicy
}

// repoClient returns a client for n's repository, sharing its transport
// (and so its token) with earlier calls.
func (r *Registries) repoClient(ctx context.Context, n name.Reference) (*repoClient, error) {
	repo := n.Context()
	policy := r.retryPolicy()
	r.mu.Lock()
	rt := r.transports[repo.String()]
	r.mu.Unlock()
	if rt == nil {
		kc := r.Keychain
		if kc == nil {
			kc = Keychain
		}
		auth, err := authn.Resolve(ctx, kc, repo)
		if err != nil {
			return nil, fmt.Errorf("credentials for %s: %w", repo.RegistryStr(), err)
		}
		rt, err = transport.NewWithContext(ctx, repo.Registry, auth, policy.Transport(r.Transport), []string{repo.Scope(transport.PullScope)})
		if err != nil {
			return nil, registryError("reaching the registry for", n, err)
		}
		r.mu.Lock()
		if r.transports == nil {
			r.transports = map[string]http.RoundTripper{}
		}
		r.transports[repo.String()] = rt
		r.mu.Unlock()
	}
	return &repoClient{ref: n, repo: repo, client: &http.Client{Transport: rt}, policy: policy}, nil
}

func (r *Registries) retryPolicy() RetryPolicy {
	if r.Retry != nil {
		return *r.Retry
	}
	return DefaultRetry
}

func (c *repoClient) url(kind, id string) string {
	return fmt.Sprintf("%s://%s/v2/%s/%s/%s", c.repo.Scheme(), c.repo.RegistryStr(), c.repo.RepositoryStr(), kind, id)
}

var manifestAccept = strings.Join([]string{
	ocispec.MediaTypeImageManifest, ocispec.MediaTypeImageIndex,
	"application/vnd.docker.distribution.manifest.v2+json",
	"application/vnd.docker.distribution.manifest.list.v2+json",
}, ",")

// bodyError is a failure while reading a response body. The transport
// retries requests that fail before an answer; the loops here retry only
// these, so that retries do not multiply.
type bodyError struct{ err error }

func (e bodyError) Error() string { return e.err.Error() }
func (e bodyError) Unwrap() error { return e.err }

func retryableBody(err error) bool {
	var be bodyError
	return errors.As(err, &be) && retryable(be.err)
}

// retry runs a small request until it succeeds, fails for good, or has
// failed policy.Attempts times.
func (c *repoClient) retry(ctx context.Context, f func() error) error {
	var err error
	for attempt := 1; ; attempt++ {
		if err = f(); err == nil || !retryableBody(err) || attempt >= c.policy.Attempts {
			return err
		}
		if err := sleepCtx(ctx, c.policy.Backoff<<(attempt-1)); err != nil {
			return err
		}
	}
}

// headManifest returns the digest the registry gives for tag or digest id.
func (c *repoClient) headManifest(ctx context.Context, id string) (digest.Digest, error) {
	var d digest.Digest
	err := c.retry(ctx, func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodHead, c.url("manifests", id), nil)
		if err != nil {
			return err
		}
		req.Header.Set("Accept", manifestAccept)
		resp, err := c.client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if err := transport.CheckError(resp, http.StatusOK); err != nil {
			return err
		}
		d = digest.Digest(resp.Header.Get("Docker-Content-Digest"))
		return nil
	})
	if err != nil {
		return "", err
	}
	if d.Validate() != nil {
		// Some registries leave the header out: read the manifest instead.
		raw, err := c.getManifest(ctx, id)
		if err != nil {
			return "", err
		}
		return digest.FromBytes(raw), nil
	}
	return d, nil
}

// getManifest reads manifest id (a tag or digest), at most MaxManifestSize
// bytes of it.
func (c *repoClient) getManifest(ctx context.Context, id string) ([]byte, error) {
	var raw []byte
	err := c.retry(ctx, func() error {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url("manifests", id), nil)
		if err != nil {
			return err
		}
		req.Header.Set("Accept", manifestAccept)
		resp, err := c.client.Do(req)
		if err != nil {
			return err
		}
		defer resp.Body.Close()
		if err := transport.CheckError(resp, http.StatusOK); err != nil {
			return err
		}
		if resp.ContentLength > MaxManifestSize {
			return errManifestTooLarge
		}
		raw, err = io.ReadAll(io.LimitReader(resp.Body, MaxManifestSize+1))
		if err != nil {
			return bodyError{err}
		}
		if len(raw) > MaxManifestSize {
			return errManifestTooLarge
		}
		return nil
	})
	return raw, err
}

var errManifestTooLarge = fmt.Errorf("the registry sent a manifest larger than the %d MiB limit (distribution's own); it is not a manifest builder will read", MaxManifestSize>>20)

// errRangeIgnored: the registry answered a ranged request with the whole
// blob, or the wrong part of it. The download starts again from the start.
var errRangeIgnored = errors.New("the registry ignored the byte range asked for")

// errBlobTooLarge: the registry sent more than the descriptor's size.
type errBlobTooLarge struct{ size int64 }

func (e errBlobTooLarge) Error() string {
	return fmt.Sprintf("the registry sent more than the %d bytes the manifest declares, and the download was stopped", e.size)
}

// fetchBlob downloads blob desc into the content store: never more than
// desc.Size bytes (plus one, to notice), committed only if size and
// digest match. A download cut short is resumed where it stopped with a
// Range request; a registry that does not honour ranges sends it again
// from the start.
//
// stream, when set, also gets the bytes as they arrive.
func (c *repoClient) fetchBlob(ctx context.Context, store *content.Store, desc ocispec.Descriptor, stream *blobstream.Stream) error {
	w, err := store.Writer(ctx)
	if err != nil {
		return err
	}
	defer func() { w.Close() }()
	failures, mismatches := 0, 0
	for {
		before := w.Size()
		err := c.fetchRange(ctx, w, desc, stream)
		restart := false
		switch {
		case err == nil:
			if _, _, err = w.Commit(desc.Digest, desc.Size); err == nil {
				return nil
			}
			// A body corrupted on the way: fetch it once more.
			if !errors.Is(err, content.ErrDigestMismatch) || mismatches > 0 {
				return err
			}
			mismatches++
			restart = true
		case errors.Is(err, errRangeIgnored):
			restart = true
		case !retryableBody(err):
			return err
		}
		if w.Size() > before && !restart {
			failures = 0 // progress: resume at once
		} else {
			failures++
			if failures >= c.policy.Attempts {
				return fmt.Errorf("%d tries: %w", failures, err)
			}
			if err := sleepCtx(ctx, c.policy.Backoff<<(failures-1)); err != nil {
				return err
			}
		}
		if restart {
			stream.Restart()
			w.Close()
			if w, err = store.Writer(ctx); err != nil {
				return err
			}
		}
	}
}

// fetchRange appends the rest of blob desc, from w.Size() on, to w (and
// stream, when set).
func (c *repoClient) fetchRange(ctx context.Context, w *content.Writer, desc ocispec.Descriptor, stream *blobstream.Stream) error {
	have := w.Size()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.url("blobs", desc.Digest.String()), nil)
	if err != nil {
		return err
	}
	if have > 0 {
		req.Header.Set("Range", fmt.Sprintf("bytes=%d-", have))
	}
	resp, err := c.client.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	switch {
	case have > 0 && resp.StatusCode == http.StatusPartialContent:
		if start, ok := contentRangeStart(resp.Header.Get("Content-Range")); !ok || start != have {
			return errRangeIgnored
		}
	case have > 0 && resp.StatusCode == http.StatusOK:
		return errRangeIgnored
	default:
		if err := transport.CheckError(resp, http.StatusOK); err != nil {
			return err
		}
	}
	remaining := desc.Size - have
	if resp.ContentLength > remaining {
		return errBlobTooLarge{desc.Size}
	}
	var dst io.Writer = w
	if stream != nil {
		dst = io.MultiWriter(w, stream)
	}
	_, err = blobstream.Copy(dst, io.LimitReader(resp.Body, remaining+1))
	if w.Size() > desc.Size {
		return errBlobTooLarge{desc.Size}
	}
	if err != nil {
		return bodyError{fmt.Errorf("after %d of %d bytes: %w", w.Size(), desc.Size, err)}
	}
	if w.Size() < desc.Size {
		return bodyError{fmt.Errorf("the connection ended after %d of %d bytes: %w", w.Size(), desc.Size, io.ErrUnexpectedEOF)}
	}
	return nil
}

// contentRangeStart reads the first byte position of "bytes START-END/SIZE".
func contentRangeStart(v string) (int64, bool) {
	rest, ok := strings.CutPrefix(v, "bytes ")
	if !ok {
		return 0, false
	}
	start, _, ok := strings.Cut(rest, "-")
	if !ok {
		return 0, false
	}
	n, err := strconv.ParseInt(start, 10, 64)
	return n, err == nil
}
