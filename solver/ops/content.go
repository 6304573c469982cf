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
// layers' uncompressed digests, leaving out empty layers: two chains with
// the same files in the same layers get the same name, whatever built
// them. It is "" when a layer's digest is not known.
func chainContent(chain []cache.Snapshot) digest.Digest {
	content := digest.Digest("")
	for i := len(chain) - 1; i >= 0; i-- {
		s := chain[i]
		if s.Empty {
			continue
		}
		if s.DiffID == "" {
			return ""
		}
		content = llb.DigestStrings("layer", content.String(), s.DiffID.String())
	}
	if content == "" {
		return llb.DigestStrings("empty tree")
	}
	return content
}

// diffID digests the layer tar of a snapshot's upper directory.
func (w *Worker) diffID(ctx context.Context, id string) (digest.Digest, error) {
	h := sha256.New()
	if err := snapshot.WriteDiff(ctx, w.Snapshots.FS(id), h, snapshot.DiffOptions{}); err != nil {
		return "", err
	}
	return digest.Digest("sha256:" + hex.EncodeToString(h.Sum(nil))), nil
}
