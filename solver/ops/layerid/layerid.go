// Package layerid names layers and snapshot chains by their contents, for
// the solver's lookups by content, and seals a step's snapshot: committed
// (not yet flushed) and described (empty or not, its content digest) in
// one call.
package layerid

import (
	"context"
	"crypto/sha256"
	"encoding/hex"

	"github.com/builder-dev/builder/cache"
	"github.com/builder-dev/builder/llb"
	"github.com/builder-dev/builder/snapshot"
	"github.com/opencontainers/go-digest"
)

// Chain names the file tree of a snapshot chain (top first) by its
// layers' contents (times left out) or, for pulled layers, their digests:
// two chains with the same files in the same layers get the same name,
// whatever built them and when. Empty layers count too, since the image
// keeps them (as BuildKit's): otherwise a second identical RUN that changes
// nothing found the first one's result by content, and the image had one
// layer less than its history. It is "" when a layer's content is not known.
func Chain(chain []cache.Snapshot) digest.Digest {
	content := digest.Digest("")
	for i := len(chain) - 1; i >= 0; i-- {
		s := chain[i]
		if s.Empty {
			content = llb.DigestStrings("empty layer", content.String())
			continue
		}
		layer := s.Content
		if layer == "" {
			layer = s.DiffID
		}
		if layer == "" {
			return ""
		}
		content = llb.DigestStrings("layer", content.String(), layer.String())
	}
	if content == "" {
		return llb.DigestStrings("empty tree")
	}
	return content
}

// Layer digests the layer tar of a layer directory with every time zeroed.
func Layer(ctx context.Context, dir string) (digest.Digest, error) {
	h := sha256.New()
	if err := snapshot.WriteDiff(ctx, dir, h, snapshot.DiffOptions{ZeroTimes: true}); err != nil {
		return "", err
	}
	return digest.Digest("sha256:" + hex.EncodeToString(h.Sum(nil))), nil
}

// Seal commits snapshot id without flushing it (Snapshotter.CommitUnsynced:
// the caller makes it durable with Sync before a record names it) and
// reports whether its layer is empty and, if not, its content digest
// (Layer). The copy snapshotter makes the layer in Commit, so it is
// digested after.
func Seal(ctx context.Context, snaps snapshot.Snapshotter, id string) (empty bool, content digest.Digest, err error) {
	if err := snaps.CommitUnsynced(id); err != nil {
		return false, "", err
	}
	if empty, err = snaps.IsEmpty(id); err != nil || empty {
		return empty, "", err
	}
	content, err = Layer(ctx, snaps.FS(id))
	return false, content, err
}
