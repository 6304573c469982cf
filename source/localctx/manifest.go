package localctx

import (
	"fmt"
	"io/fs"
	"time"
)

// ManifestEntry is one file of a tree as the checksum walk sees it: what a
// client sends a build server so that it can ask only for the contents it
// lacks.
type ManifestEntry struct {
	// Path is relative to the tree's root, slash-separated; "." is the root.
	Path    string
	Mode    fs.FileMode
	Link    string   // symlink target
	Sum     [32]byte // sha256 of a regular file's content
	Size    int64
	MtimeNs int64
}

// Manifest lists every file below the tree's root that .dockerignore keeps,
// parents before children, with the content digests Checksum computes (from
// the SumCache where it is valid).
func (t *Tree) Manifest() ([]ManifestEntry, error) {
	walked := time.Now()
	entries, err := t.collect(".", nil)
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", t.Root, err)
	}
	if err := t.hashFiles(entries, walked, t.treeID(".", nil), nil); err != nil {
		return nil, fmt.Errorf("listing %s: %w", t.Root, err)
	}
	out := make([]ManifestEntry, len(entries))
	for i, e := range entries {
		out[i] = ManifestEntry{Path: e.relPath(), Mode: e.mode, Link: e.link, Sum: e.sum, Size: e.key.Size, MtimeNs: e.key.MtimeNs}
	}
	return out, nil
}
