package source

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/builder-dev/builder/cache/content"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote"
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

func (r *Registries) remoteOptions(ctx context.Context) []remote.Option {
	kc := r.Keychain
	if kc == nil {
		kc = Keychain
	}
	return []remote.Option{remote.WithContext(ctx), remote.WithAuthFromKeychain(kc)}
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
		desc, err := remote.Head(n, r.remoteOptions(ctx)...)
		if err != nil {
			return nil, registryError("resolving", n, err)
		}
		dgst = digest.Digest(desc.Digest.String())
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
	config, err := r.blobBytes(ctx, n, m.Config.Digest)
	if err != nil {
		return nil, err
	}
	return &Resolved{Ref: n, Digest: dgst, Manifest: m, Config: config}, nil
}

func pickPlatform(idx ocispec.Index, p ocispec.Platform) (digest.Digest, error) {
	var seen []string
	for _, m := range idx.Manifests {
		if m.Platform == nil {
			continue
		}
		seen = append(seen, m.Platform.OS+"/"+m.Platform.Architecture)
		if m.Platform.OS == p.OS && m.Platform.Architecture == p.Architecture && (p.Variant == "" || m.Platform.Variant == p.Variant) {
			return m.Digest, nil
		}
	}
	return "", fmt.Errorf("no manifest for %s/%s (the image has: %s)", p.OS, p.Architecture, strings.Join(seen, ", "))
}

// manifest returns the raw manifest dgst of repository n, from the content
// store or the registry.
func (r *Registries) manifest(ctx context.Context, n name.Reference, dgst digest.Digest) ([]byte, error) {
	if b, err := r.Content.ReadAll(dgst); err == nil {
		return b, nil
	}
	ref := n.Context().Digest(dgst.String())
	desc, err := remote.Get(ref, r.remoteOptions(ctx)...)
	if err != nil {
		return nil, registryError("fetching manifest of", n, err)
	}
	if got := digest.FromBytes(desc.Manifest); got != dgst {
		return nil, fmt.Errorf("image %s: registry sent a manifest with digest %s for %s", n, got, dgst)
	}
	if _, err := r.Content.WriteBytes(ctx, desc.Manifest); err != nil {
		return nil, err
	}
	return desc.Manifest, nil
}

func (r *Registries) blobBytes(ctx context.Context, n name.Reference, dgst digest.Digest) ([]byte, error) {
	if err := r.FetchBlob(ctx, n, dgst); err != nil {
		return nil, err
	}
	return r.Content.ReadAll(dgst)
}

// FetchBlob makes sure blob dgst of n's repository is in the content store.
func (r *Registries) FetchBlob(ctx context.Context, n name.Reference, dgst digest.Digest) error {
	if r.Content.Exists(dgst) {
		return nil
	}
	l, err := remote.Layer(n.Context().Digest(dgst.String()), r.remoteOptions(ctx)...)
	if err != nil {
		return registryError("fetching blob "+dgst.String()+" of", n, err)
	}
	rc, err := l.Compressed()
	if err != nil {
		return registryError("fetching blob "+dgst.String()+" of", n, err)
	}
	defer rc.Close()
	if _, _, err := r.Content.WriteBlob(ctx, rc, dgst); err != nil {
		return fmt.Errorf("image %s: storing blob %s: %w", n, dgst, err)
	}
	if r.Sources != nil {
		// Only a hint for later pushes: losing it costs an upload.
		r.Sources.PutBlobSource(dgst, n.Context().Name())
	}
	return nil
}

// registryError says what the registry answered, and what to do about it.
func registryError(doing string, n name.Reference, err error) error {
	var te *transport.Error
	if errors.As(err, &te) {
		switch te.StatusCode {
		case http.StatusUnauthorized, http.StatusForbidden:
			return fmt.Errorf("%s image %s: the registry refused access (%d); log in with a docker config (~/.docker/config.json or $DOCKER_CONFIG): %w", doing, n, te.StatusCode, err)
		case http.StatusNotFound:
			return fmt.Errorf("%s image %s: not found in the registry: %w", doing, n, err)
		}
	}
	if errors.Is(err, context.Canceled) {
		return err
	}
	return fmt.Errorf("%s image %s: %w", doing, n, err)
}
