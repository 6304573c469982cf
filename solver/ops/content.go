package ops

import (
	"context"
	"crypto/sha256"
	"encoding/hex"

	"github.com/builder-dev/builder/cache"
	"github.com/builder-dev/builder/llb"
	"github.com/builder-dev/builder/snapshot"
	"github.com/opencontainers/go-digest"
)

// chainContent names the file tree of a snapshot chain (top first) by its
// layers' contents (times left out) or, for pulled layers, their digests:
// two chains with the same files in the same layers get the same name,
// whatever built them and when. Empty layers count too, since the image
// keeps them (as BuildKit's): otherwise a second identical RUN that changes
// nothing found the first one's result by content, and the image had one
// layer less than its history. It is "" when a layer's content is not known.
func chainContent(chain []cache.Snapshot) digest.Digest {
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

// layerContent digests the layer tar of a snapshot's upper directory with
// every time zeroed.
func (w *Worker) layerContent(ctx context.Context, id string) (digest.Digest, error) {
	h := sha256.New()
	if err := snapshot.WriteDiff(ctx, w.Snapshots.FS(id), h, snapshot.DiffOptions{ZeroTimes: true}); err != nil {
		return "", err
	}
	return digest.Digest("sha256:" + hex.EncodeToString(h.Sum(nil))), nil
}
