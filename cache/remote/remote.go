// Package remote moves the build cache between state directories through a
// registry or an OCI layout directory (--cache-to, --cache-from). An export
// writes the cache keys of a finished build and the layer chains of their
// results as a cache manifest (docs/cache-format.md); an import puts such
// caches behind the local one, fetching and unpacking a chain's blobs only
// when the solver looks up a key that needs it.
package remote

import (
	"github.com/builder-dev/builder/cache"
	"github.com/builder-dev/builder/cache/content"
	"github.com/builder-dev/builder/snapshot"
	"github.com/builder-dev/builder/source"
	"github.com/google/go-containerregistry/pkg/authn"
)

// Local is the state directory a cache is imported into or exported from,
// with what one build says about reaching registries.
type Local struct {
	DB         *cache.DB
	Content    *content.Store
	Snapshots  snapshot.Snapshotter
	Registries *source.Registries
	// Puller unpacks the layer blobs of an imported chain.
	Puller *source.Puller
	// Keychain authenticates pushes of the cache; exporter.Push refuses
	// to push without one.
	Keychain authn.Keychain
	// Warn, when set, receives the problems that do not fail a build: a
	// cache that cannot be read, an export with ignore-error=true.
	Warn func(string)
}

func (l *Local) warn(msg string) {
	if l.Warn != nil {
		l.Warn(msg)
	}
}
