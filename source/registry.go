package source

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"

	"github.com/builder-dev/builder/cache/content"
	"github.com/builder-dev/builder/internal/blobstream"
	"github.com/builder-dev/builder/platform"
	"github.com/docker/go-units"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Registries talks to image registries: resolving references and fetching
// manifests and blobs, which it keeps in the content store.
type Registries struct {
	Content *content.Store
	// Insecure lists registry hosts to reach over plain HTTP. Loopback
	// registries always are.
	Insecure []string
	Keychain authn.Keychain
	// Sources, when set, remembers which repository each fetched blob
	// came from.
	Sources interface {
		PutBlobSource(d digest.Digest, repository string) error
	}
	// Retry is how requests are retried; nil means DefaultRetry.
	Retry *RetryPolicy
	// Transport, when set, replaces go-containerregistry's default HTTP
	// transport below retries and auth.
	Transport http.RoundTripper

	mu sync.Mutex
	// transports holds an authenticated transport per repository.
	transports map[string]http.RoundTripper
}

// Resolved is an image reference pinned to a platform's manifest.
type Resolved struct {
	Ref      name.Reference
	Digest   digest.Digest
	Manifest ocispec.Manifest
	Config   []byte
}

// ParseReference parses ref, applying the insecure-registry setting.
func (r *Registries) ParseReference(ref string) (name.Reference, error) {
	opts := []name.Option{name.WeakValidation}
	if strings.Contains(ref, "/") {
		host, _, _ := strings.Cut(ref, "/")
		for _, h := range r.Insecure {
			if h == host {
				opts = append(opts, name.Insecure)
			}
		}
	}
	n, err := name.ParseReference(ref, opts...)
	if err != nil {
		return nil, fmt.Errorf("invalid reference format: %q: %w", ref, err)
	}
	return n, nil
}

// Resolve pins ref to the manifest for platform. Manifests and configs are
// kept in the content store, so resolving a tag again costs one HEAD request.
func (r *Registries) Resolve(ctx context.Context, ref string, platform ocispec.Platform) (*Resolved, error) {
	n, err := r.ParseReference(ref)
	if err != nil {
		return nil, err
	}
	var dgst digest.Digest
	if d, ok := n.(name.Digest); ok {
		dgst = digest.Digest(d.DigestStr())
	} else {
		c, err := r.repoClient(ctx, n)
		if err != nil {
			return nil, err
		}
		if dgst, err = c.headManifest(ctx, n.Identifier()); err != nil {
			return nil, registryError("resolving", n, err)
		}
	}
	raw, err := r.manifest(ctx, n, dgst)
	if err != nil {
		return nil, err
	}
	var probe struct {
		MediaType string            `json:"mediaType"`
		Manifests []json.RawMessage `json:"manifests"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return nil, fmt.Errorf("image %s: manifest %s: %w", n, dgst, err)
	}
	if probe.Manifests != nil {
		var idx ocispec.Index
		if err := json.Unmarshal(raw, &idx); err != nil {
			return nil, fmt.Errorf("image %s: index %s: %w", n, dgst, err)
		}
		d, err := pickPlatform(idx, platform)
		if err != nil {
			return nil, fmt.Errorf("image %s: %w", n, err)
		}
		dgst = d
		if raw, err = r.manifest(ctx, n, dgst); err != nil {
			return nil, err
		}
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return nil, fmt.Errorf("image %s: manifest %s: %w", n, dgst, err)
	}
	if m.Config.Size > MaxConfigSize || m.Config.Size < 0 {
		return nil, fmt.Errorf("image %s: manifest %s declares a config of %d bytes; builder reads configs of up to %d MiB", n, dgst, m.Config.Size, MaxConfigSize>>20)
	}
	config, err := r.blobBytes(ctx, n, m.Config)
	if err != nil {
		return nil, err
	}
	return &Resolved{Ref: n, Digest: dgst, Manifest: m, Config: config}, nil
}

// pickPlatform chooses idx's manifest for p, variant-aware; the error lists
// the platforms the index has.
func pickPlatform(idx ocispec.Index, p ocispec.Platform) (digest.Digest, error) {
	d, err := platform.Select(idx.Manifests, p)
	return d.Digest, err
}

// manifest returns the raw manifest dgst of repository n, from the content
// store or the registry.
func (r *Registries) manifest(ctx context.Context, n name.Reference, dgst digest.Digest) ([]byte, error) {
	if b, err := r.Content.ReadAll(dgst); err == nil {
		return b, nil
	}
	c, err := r.repoClient(ctx, n)
	if err != nil {
		return nil, err
	}
	raw, err := c.getManifest(ctx, dgst.String())
	if err != nil {
		return nil, registryError("fetching manifest "+dgst.String()+" of", n, err)
	}
	if got := digest.FromBytes(raw); got != dgst {
		return nil, fmt.Errorf("fetching manifest %s of image %s from registry %s: the registry sent a manifest with digest %s; a proxy or mirror in between may be serving wrong content", dgst, n, n.Context().RegistryStr(), got)
	}
	if _, err := r.Content.WriteBytes(ctx, raw); err != nil {
		return nil, err
	}
	return raw, nil
}

func (r *Registries) blobBytes(ctx context.Context, n name.Reference, desc ocispec.Descriptor) ([]byte, error) {
	if err := r.FetchBlob(ctx, n, desc); err != nil {
		return nil, err
	}
	return r.Content.ReadAll(desc.Digest)
}

// FetchBlob makes sure blob desc of n's repository is in the content store.
// The download is bounded by desc.Size and checked against desc.Digest
// before anything is stored; see repoClient.fetchBlob for retries.
func (r *Registries) FetchBlob(ctx context.Context, n name.Reference, desc ocispec.Descriptor) error {
	return r.fetchBlob(ctx, n, desc, nil)
}

// fetchBlob is FetchBlob that also passes the bytes to stream, when set.
func (r *Registries) fetchBlob(ctx context.Context, n name.Reference, desc ocispec.Descriptor, stream *blobstream.Stream) error {
	if r.Content.Exists(desc.Digest) {
		return nil
	}
	doing := fmt.Sprintf("fetching blob %s (%s) of", desc.Digest, units.HumanSize(float64(desc.Size)))
	if err := desc.Digest.Validate(); err != nil {
		return fmt.Errorf("%s image %s: %w", doing, n, err)
	}
	if desc.Size < 0 {
		return fmt.Errorf("%s image %s: the manifest gives it a negative size", doing, n)
	}
	c, err := r.repoClient(ctx, n)
	if err != nil {
		return err
	}
	if err := c.fetchBlob(ctx, r.Content, desc, stream); err != nil {
		return registryError(doing, n, err)
	}
	if r.Sources != nil {
		// Only a hint for later pushes: losing it costs an upload.
		r.Sources.PutBlobSource(desc.Digest, n.Context().Name())
	}
	return nil
}

// registryError says what the registry answered, and what to do about it:
// "DOING image REF: registry HOST answered 503 Service Unavailable: ...;
// try again later".
func registryError(doing string, n name.Reference, err error) error {
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	return fmt.Errorf("%s image %s: %w", doing, n, RegistryError(n.Context().RegistryStr(), err))
}

// RegistryError wraps an error from registry host with the HTTP status it
// answered, if any, and advice on what to do.
func RegistryError(host string, err error) error {
	var te *transport.Error
	var tooLarge errBlobTooLarge
	advice := ""
	switch {
	case errors.As(err, &te):
		switch te.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			advice = "the registry refused access: log in with a docker config (~/.docker/config.json or $DOCKER_CONFIG) or $" + RegistryAuthEnv
		case http.StatusNotFound:
			advice = "the image or tag was not found: check the name and tag"
		case http.StatusTooManyRequests:
			advice = "the registry limits the request rate: wait, log in for a higher limit, or use a mirror"
		default:
			if te.StatusCode >= 500 {
				advice = "the registry failed and retries did not help: try again later or use another mirror"
			}
		}
		return fmt.Errorf("registry %s answered %d %s: %w; %s", host, te.StatusCode, http.StatusText(te.StatusCode), err, advice)
	case errors.As(err, &tooLarge), errors.Is(err, errManifestTooLarge):
		advice = "the registry or a proxy in between serves wrong content; nothing was stored"
	case errors.Is(err, content.ErrDigestMismatch), errors.Is(err, content.ErrSizeMismatch):
		advice = "the content was corrupted on the way, twice: a proxy or mirror in between may be serving wrong data; nothing was stored"
	case retryable(err):
		advice = "the connection kept failing: check the network, a proxy, or the registry, and try again"
	}
	if advice == "" {
		return fmt.Errorf("registry %s: %w", host, err)
	}
	return fmt.Errorf("registry %s: %w; %s", host, err, advice)
}
