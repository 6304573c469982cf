// Package layerid names layers and snapshot chains by their contents, for
// the solver's lookups by content, and seals a step's snapshot: committed
// to disk and described (empty or not, its content digest) in one call.
package layerid

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"

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

// Seal commits snapshot id (Snapshotter.Commit: durable once it returns)
// and reports whether its layer is empty and, if not, its content digest
// (Layer). With overlay the layer directory is final before Commit (the
// step's mounts are gone), so it is digested while Commit's syncfs waits
// for the disk: a step's output is read from the page cache during a
// flush that took 2-30 ms a step (more for large layers) on a journaled
// ext4. The copy snapshotter makes the layer in Commit, so there it is
// digested after.
func Seal(ctx context.Context, snaps snapshot.Snapshotter, id string) (empty bool, content digest.Digest, err error) {
	describe := func() error {
		if empty, err = snaps.IsEmpty(id); err != nil || empty {
			return err
		}
		content, err = Layer(ctx, snaps.FS(id))
		return err
	}
	if snaps.CopyMode() {
		if err := snaps.Commit(id); err != nil {
			return false, "", err
		}
		// describe sets the named results: read them after it returns.
		err = describe()
		return empty, content, err
	}
	committed := make(chan error, 1)
	go func() { committed <- snaps.Commit(id) }()
	derr := describe()
	if err := errors.Join(<-committed, derr); err != nil {
		return false, "", err
	}
	return empty, content, nil
}
