// Package push uploads an image or an image index of the content store to
// a registry in few requests, since a rebuild that changed one small layer
// pays for each round trip and for each write the registry makes durable:
//
//   - the tag is asked for first (one manifest HEAD); if it names the
//     manifest already, nothing else is sent (a push started before its
//     image asks again at the end, since the tag may have moved);
//   - a blob is uploaded in two requests, a POST and one PUT with the
//     content (as containerd does), not POST, PATCH and PUT;
//   - a small blob the registry is not known to have is uploaded without
//     a HEAD first: a new config or a small new layer is the common case;
//   - a blob of the manifest the tag named before (read from the content
//     store) and every large blob get a HEAD first, and are uploaded only
//     if the registry says it lacks them, so a registry that lost a blob
//     gets it again;
//   - a blob pulled from another repository of the registry is mounted
//     from there (one POST), and all blobs of a manifest go in parallel.
package push

import (
	"context"
	"fmt"
	"maps"
	"net/http"
	"slices"
	"sync"
	"time"

	"github.com/builder-dev/builder/cache/content"
	"github.com/builder-dev/builder/source"
	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
)

// SmallBlob is the largest blob uploaded without asking the registry first
// whether it has it, unless the manifest the tag named before lists it: at
// this size an upload costs about what the question does.
const SmallBlob = 128 << 10

// jobs bounds the blob requests in flight.
const jobs = 8

// BlobSources says which repository a blob was fetched from.
type BlobSources interface {
	BlobSource(d digest.Digest) (repository string, ok bool)
}

// Record remembers which blobs pushes found in (or sent to) a repository,
// a hint that spares a push the HEAD before an upload; sources may offer it.
// A blob it names is still asked about, never taken for granted.
type Record interface {
	Pushed(repository string) map[digest.Digest]bool
	RememberPushed(repository string, blobs []digest.Digest) error
}

// Push uploads the manifest or index desc of store, with everything it
// names, to ref, with the credentials kc gives; blobs that sources says
// came from another repository of ref's registry are mounted from there.
func Push(ctx context.Context, store *content.Store, desc ocispec.Descriptor, ref name.Reference, kc authn.Keychain, sources BlobSources) error {
	// fresh: asked just now, so Pending.Push neither asks again nor
	// retries a failed start.
	p := &Pending{ref: ref, kc: kc, s: newSession(ref, sources), started: make(chan struct{}), fresh: true}
	if kc != nil {
		p.s.store = store
		p.err = p.s.start(ctx, kc, p.s.mountScopes(desc))
		if p.err == nil {
			p.current, p.err = p.s.headManifest(ctx, ref.Identifier())
		}
	}
	close(p.started)
	return p.Push(ctx, store, desc)
}

// Pending is a push started before its image exists: the requests that do
// not need the image (ping, credentials, the tag's current manifest) run
// while the image is assembled.
type Pending struct {
	ref     name.Reference
	kc      authn.Keychain
	s       *session
	started chan struct{}
	current digest.Digest
	// fresh says current was asked for just before Push, not at Start;
	// askedAt is when Start had its answer.
	fresh   bool
	askedAt time.Time
	err     error
}

// RecheckAfter is how old Start's answer about the tag may be for Push to
// skip a push on it: a build that took longer asks again, in case another
// push moved the tag meanwhile. A no-op rebuild (well under it) makes one
// manifest HEAD; a race with another push is left a window as short as
// that of asking just before the upload would leave it while blobs upload.
var RecheckAfter = time.Second

// RefreshAfter is how old the credentials Start resolved may be for Push
// to upload with them: an older push resolves them (and makes its
// transport) again, since a credential helper's token may have expired.
var RefreshAfter = 5 * time.Minute

// Start starts a push to ref; Push finishes it. A Pending that is not
// pushed must be waited for with Wait.
func Start(ctx context.Context, ref name.Reference, kc authn.Keychain, sources BlobSources) *Pending {
	p := &Pending{ref: ref, kc: kc, s: newSession(ref, sources), started: make(chan struct{})}
	go func() {
		defer close(p.started)
		if kc == nil {
			return // Push says why
		}
		if p.err = p.s.start(ctx, kc, nil); p.err == nil {
			p.current, p.err = p.s.headManifest(ctx, ref.Identifier())
			p.askedAt = time.Now()
		}
	}()
	return p
}

// Wait waits for what Start began.
func (p *Pending) Wait() { <-p.started }

// Push uploads the manifest or index desc of store, with everything it
// names, to the started push's reference.
func (p *Pending) Push(ctx context.Context, store *content.Store, desc ocispec.Descriptor) error {
	return p.PushWhen(ctx, store, desc, nil)
}

// PushWhen is Push, but puts desc under the reference (the tag) only once
// ready, if not nil, returned nil: what desc names uploads meanwhile, and
// ready's error stops the push with no tag moved.
func (p *Pending) PushWhen(ctx context.Context, store *content.Store, desc ocispec.Descriptor, ready func(context.Context) error) error {
	p.Wait()
	if p.kc == nil {
		// The caller picks the credentials; none at all is a bug, not a
		// reason to push anonymously.
		return fmt.Errorf("pushing %s: no keychain given", p.ref)
	}
	s := p.s
	s.store = store
	err := p.err
	if !p.fresh && (err != nil || time.Since(p.askedAt) > RefreshAfter) {
		// The credentials Start resolved stay the transport's (a token
		// refresh reuses them): a credential helper's token may have
		// expired in a long build, and a start that failed may work now.
		// Ask again, as BuildKit does at push time; Start's answer about
		// the tag was only a hint.
		if err = s.start(ctx, p.kc, nil); err == nil {
			p.current, err = s.headManifest(ctx, p.ref.Identifier())
			p.fresh = true
		}
	}
	if err == nil && p.current == desc.Digest && !p.fresh && time.Since(p.askedAt) > RecheckAfter {
		// Another push may have moved the tag since Start asked: skip
		// only if it still names desc.
		p.current, err = s.headManifest(ctx, p.ref.Identifier())
	}
	if err == nil && p.current != desc.Digest {
		err = p.upload(ctx, desc, ready)
	}
	if err != nil {
		if ctx.Err() == nil {
			err = fmt.Errorf("pushing %s: %w", p.ref, source.RegistryError(p.ref.Context().RegistryStr(), err))
		}
		return err
	}
	return nil
}

// upload pushes desc, whose digest the tag does not name yet.
func (p *Pending) upload(ctx context.Context, desc ocispec.Descriptor, ready func(context.Context) error) error {
	s := p.s
	rec, _ := s.sources.(Record)
	var probably map[digest.Digest]bool
	if rec != nil {
		probably = rec.Pushed(s.repo.Name())
	}
	if err := s.pushAgainst(ctx, desc, p.ref.Identifier(), p.current, probably, ready); err != nil {
		return err
	}
	if rec != nil && s.sent {
		var blobs []digest.Digest
		s.walk(desc, func(b ocispec.Descriptor) { blobs = append(blobs, b.Digest) })
		// Only a hint: without it the next push asks or uploads again.
		rec.RememberPushed(s.repo.Name(), blobs)
	}
	return nil
}

func newSession(ref name.Reference, sources BlobSources) *session {
	return &session{repo: ref.Context(), sources: sources, done: map[digest.Digest]*once{}}
}

// session is one push to one repository.
type session struct {
	store   *content.Store
	repo    name.Repository
	sources BlobSources
	client  *http.Client
	// kc and scopes are the credentials and what they were asked for.
	kc     authn.Keychain
	scopes []string

	mu sync.Mutex
	// sent is set once a manifest was put: the registry has every blob
	// of what was pushed.
	sent bool
	// done makes each blob's request once, however many manifests of an
	// index list it.
	done map[digest.Digest]*once
}

type once struct {
	sync.Once
	err error
}

func (s *session) read(d digest.Digest) ([]byte, content.Doc, error) {
	raw, err := s.store.ReadAll(d)
	if err != nil {
		return nil, content.Doc{}, err
	}
	m, err := content.ParseDoc(raw)
	if err != nil {
		return nil, content.Doc{}, fmt.Errorf("manifest %s: %w", d, err)
	}
	return raw, m, nil
}

// mountScopes are the access the push of desc needs: push to the
// repository and pull from those its blobs are mounted from.
func (s *session) mountScopes(desc ocispec.Descriptor) []string {
	scopes := []string{s.repo.Scope(transport.PushScope)}
	seen := map[string]bool{}
	s.walk(desc, func(b ocispec.Descriptor) {
		if from, ok := s.mountFrom(b.Digest); ok && !seen[from.String()] {
			seen[from.String()] = true
			scopes = append(scopes, from.Scope(transport.PullScope))
		}
	})
	return scopes
}

// start makes the session's authenticated client with scopes (nil: push
// access to the repository).
func (s *session) start(ctx context.Context, kc authn.Keychain, scopes []string) error {
	if scopes == nil {
		scopes = []string{s.repo.Scope(transport.PushScope)}
	}
	auth, err := authn.Resolve(ctx, kc, s.repo)
	if err != nil {
		return fmt.Errorf("credentials for %s: %w", s.repo.RegistryStr(), err)
	}
	tr, err := transport.NewWithContext(ctx, s.repo.Registry, auth, source.DefaultRetry.Transport(nil), scopes)
	if err != nil {
		return err
	}
	s.client = &http.Client{Transport: tr, CheckRedirect: checkRedirect}
	s.kc, s.scopes = kc, scopes
	return nil
}

// canMount makes sure the client may read repository from, to mount a
// blob from there: a started push asked for push access only, and a new
// token (a new ping) is asked for only by pushes that mount.
func (s *session) canMount(ctx context.Context, from name.Repository) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	scope := from.Scope(transport.PullScope)
	if slices.Contains(s.scopes, scope) {
		return nil
	}
	return s.start(ctx, s.kc, append(slices.Clone(s.scopes), scope))
}

// walk calls fn with each blob of desc and of the manifests it lists that
// are in the store.
func (s *session) walk(desc ocispec.Descriptor, fn func(ocispec.Descriptor)) error {
	_, m, err := s.read(desc.Digest)
	if err != nil {
		return err
	}
	for _, b := range m.Blobs() {
		fn(b)
	}
	for _, c := range m.Manifests {
		if s.store.Exists(c.Digest) {
			if err := s.walk(c, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// mountFrom returns the repository of the registry d can be mounted from.
func (s *session) mountFrom(d digest.Digest) (name.Repository, bool) {
	r, ok := s.fetchedFrom(d)
	return r, ok && s.mountable(r)
}

// mountable says whether a blob of repository r can be mounted from there.
func (s *session) mountable(r name.Repository) bool {
	return r.RegistryStr() == s.repo.RegistryStr() && r.RepositoryStr() != s.repo.RepositoryStr()
}

// fetchedFrom returns the repository d was fetched from, if sources knows.
func (s *session) fetchedFrom(d digest.Digest) (name.Repository, bool) {
	if s.sources == nil {
		return name.Repository{}, false
	}
	repo, ok := s.sources.BlobSource(d)
	if !ok {
		return name.Repository{}, false
	}
	r, err := name.NewRepository(repo, name.WeakValidation)
	return r, err == nil
}

// push puts desc under id (a tag or desc's digest) unless the registry has
// it there already. probably lists blobs the registry probably has (an
// index's, for its manifests).
func (s *session) push(ctx context.Context, desc ocispec.Descriptor, id string, probably map[digest.Digest]bool) error {
	current, err := s.headManifest(ctx, id)
	if err != nil {
		return err
	}
	return s.pushAgainst(ctx, desc, id, current, probably, nil)
}

// pushAgainst is push once the registry said it has current under id; the
// put under id waits for ready (see PushWhen).
func (s *session) pushAgainst(ctx context.Context, desc ocispec.Descriptor, id string, current digest.Digest, probably map[digest.Digest]bool, ready func(context.Context) error) error {
	if current == desc.Digest {
		return nil
	}
	// What the tag named before (if this store has it) says which blobs
	// the registry probably has: those are asked about, not uploaded.
	if current != "" && s.store.Exists(current) {
		probably = maps.Clone(probably) // an index's manifests share it
		if probably == nil {
			probably = map[digest.Digest]bool{}
		}
		s.walk(ocispec.Descriptor{Digest: current}, func(b ocispec.Descriptor) { probably[b.Digest] = true })
	}
	return s.put(ctx, desc, id, probably, ready)
}

// put uploads what desc names and then, once ready (if not nil) returned
// nil, desc under id.
func (s *session) put(ctx context.Context, desc ocispec.Descriptor, id string, probably map[digest.Digest]bool, ready func(context.Context) error) error {
	raw, m, err := s.read(desc.Digest)
	if err != nil {
		return err
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(jobs)
	for _, b := range m.Blobs() {
		g.Go(func() error { return s.blobOnce(gctx, b, probably[b.Digest]) })
	}
	// An index's manifests, each by digest (a HEAD, then its blobs).
	for _, c := range m.Manifests {
		g.Go(func() error { return s.push(gctx, c, c.Digest.String(), probably) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	if ready != nil {
		if err := ready(ctx); err != nil {
			return err
		}
	}
	mt := desc.MediaType
	if mt == "" {
		mt = m.MediaType
	}
	if err := s.putManifest(ctx, id, mt, raw); err != nil {
		return err
	}
	s.mu.Lock()
	s.sent = true
	s.mu.Unlock()
	return nil
}

// blobOnce makes sure the registry has blob b, once per session.
func (s *session) blobOnce(ctx context.Context, b ocispec.Descriptor, probably bool) error {
	s.mu.Lock()
	o := s.done[b.Digest]
	if o == nil {
		o = &once{}
		s.done[b.Digest] = o
	}
	s.mu.Unlock()
	o.Do(func() { o.err = s.blob(ctx, b, probably) })
	return o.err
}

func (s *session) blob(ctx context.Context, b ocispec.Descriptor, probably bool) error {
	if !types.MediaType(b.MediaType).IsDistributable() {
		return nil // a foreign layer: the registry never gets it
	}
	from, fetched := s.fetchedFrom(b.Digest)
	mountable := fetched && s.mountable(from)
	if fetched && from.Name() == s.repo.Name() {
		probably = true // pulled from this repository
	}
	if probably || (b.Size > SmallBlob && !mountable) {
		has, err := s.headBlob(ctx, b.Digest)
		if err != nil || has {
			return err
		}
	}
	var fromRepo string
	if mountable {
		if err := s.canMount(ctx, from); err != nil {
			return err
		}
		fromRepo = from.RepositoryStr()
	}
	if err := s.upload(ctx, b, fromRepo); err != nil {
		return fmt.Errorf("pushing blob %s: %w", b.Digest, err)
	}
	return nil
}
