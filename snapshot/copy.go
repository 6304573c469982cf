package snapshot

import (
	"crypto/sha256"
	"encoding/hex"
	"path/filepath"
	"strings"
)

// The copy mode, for filesystems and kernels where overlayfs cannot be
// mounted. It keeps the on-disk layer format: root/<id>/fs is still an
// overlay upper directory holding only the layer's changes, so WriteDiff,
// Apply and the exporter do not know which mode made a layer. What differs:
//
//	root/<id>/rootfs    while active: a full copy of the parents' merged
//	                    view, which Mounts bind-mounts read-write; Commit
//	                    compares it with the parents' view and stores the
//	                    difference in fs (new and changed entries, 0/0
//	                    whiteouts for deleted ones, opaque directories for
//	                    directories deleted and made again)
//	root/<id>/parents   while active: the parents given to Prepare
//	root/<id>/copied    while active: a marker written when the copy was
//	                    complete; files whose ctime is older are unchanged
//	root/<id>/views/<k> after Commit: the merged view of id and its parents
//	                    (k digests the list), kept so that the next step on
//	                    top of id copies one directory instead of merging
//	                    layers again, and so that View is a read-only bind
//	                    of it. Removed with id.
//
// Views are built on demand from the layers when missing (base images
// unpacked by Apply, snapshots committed in overlay mode).

// WithCopy selects the copy mode: Prepare copies the parents' merged view
// into a directory that Mounts bind-mounts, and Commit stores the
// difference as an overlay-format layer. Use it where overlay mounts fail.
func WithCopy(on bool) Option {
	return func(s *Snapshotter) { s.copy = on }
}

// CopyMode reports whether the snapshotter uses the copy mode.
func (s *Snapshotter) CopyMode() bool { return s.copy }

// UpperDir returns the directory that receives the writes of the active
// snapshot id: its layer directory in overlay mode, its full root
// directory in copy mode. Executors remove the mount point stubs they
// created from it.
func (s *Snapshotter) UpperDir(id string) string {
	if s.copy {
		return s.rootfs(id)
	}
	return s.FS(id)
}

func (s *Snapshotter) rootfs(id string) string { return filepath.Join(s.root, id, "rootfs") }

// viewKey names the merged view of parents (top-most first).
func viewKey(parents []string) string {
	h := sha256.Sum256([]byte(strings.Join(parents, "\n")))
	return hex.EncodeToString(h[:12])
}

// viewDir is where the merged view of parents is kept; len(parents) > 0.
func (s *Snapshotter) viewDir(parents []string) string {
	return filepath.Join(s.root, parents[0], "views", viewKey(parents))
}

// copyView returns a read-only bind of the merged view of parents,
// building it if needed. Mount has no way to return an error, so a failure
// becomes a mount that fails with the reason in its source.
func (s *Snapshotter) copyView(parents []string) []Mount {
	dir, err := s.ensureView(parents)
	if err != nil {
		return []Mount{{Type: "none", Source: "copy-snapshotter view failed: " + err.Error(), Options: []string{"bind", "ro"}}}
	}
	return []Mount{{Type: "bind", Source: dir, Options: []string{"bind", "ro"}}}
}
