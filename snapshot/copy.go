package snapshot

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"path/filepath"
	"strings"
)

// copySnapshotter is the Snapshotter for filesystems and kernels where
// overlayfs cannot be mounted. It keeps the on-disk layer format:
// root/<id>/fs is still an overlay upper directory holding only the
// layer's changes, so WriteDiff, Apply and the exporter do not know which
// snapshotter made a layer. What differs:
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
// unpacked by Apply, snapshots committed by the overlay snapshotter). The
// copying and comparing is package treecopy's.
type copySnapshotter struct{ layout }

var _ Snapshotter = (*copySnapshotter)(nil)

func (s *copySnapshotter) CopyMode() bool { return true }

// Prepare creates the empty layer and root/<id>/rootfs, a copy of the
// merged view of parents.
func (s *copySnapshotter) Prepare(id string, parents ...string) error {
	if err := s.prepare(id); err != nil {
		return err
	}
	if err := s.prepareCopy(id, parents); err != nil {
		return fmt.Errorf("preparing snapshot %s: %w", id, err)
	}
	return nil
}

// Commit stores the difference between the root directory and the
// parents' view as the layer, then removes the workdir and syncs.
func (s *copySnapshotter) Commit(id string) error {
	return s.commit(id, true, func() error { return s.commitCopy(id) })
}

// CommitUnsynced is Commit without the sync.
func (s *copySnapshotter) CommitUnsynced(id string) error {
	return s.commit(id, false, func() error { return s.commitCopy(id) })
}

// Mounts is a read-write bind of the snapshot's root directory.
func (s *copySnapshotter) Mounts(id string, _ []string) []Mount {
	return []Mount{{Type: "bind", Source: s.rootfs(id), Options: []string{"bind"}}}
}

// UpperDir is the full root directory, where the writes land.
func (s *copySnapshotter) UpperDir(id string) string { return s.rootfs(id) }

// View is a read-only bind of the merged view of parents, built if needed.
// Mount has no way to return an error, so a failure becomes a mount that
// fails with the reason in its source.
func (s *copySnapshotter) View(parents []string) []Mount {
	if len(parents) == 0 {
		return s.emptyView()
	}
	dir, err := s.ensureView(parents)
	if err != nil {
		return []Mount{{Type: "none", Source: "copy-snapshotter view failed: " + err.Error(), Options: []string{"bind", "ro"}}}
	}
	return []Mount{{Type: "bind", Source: dir, Options: []string{"bind", "ro"}}}
}

func (s *copySnapshotter) rootfs(id string) string { return filepath.Join(s.root, id, "rootfs") }

// viewKey names the merged view of parents (top-most first).
func viewKey(parents []string) string {
	h := sha256.Sum256([]byte(strings.Join(parents, "\n")))
	return hex.EncodeToString(h[:12])
}

// viewDir is where the merged view of parents is kept; len(parents) > 0.
func (s *copySnapshotter) viewDir(parents []string) string {
	return filepath.Join(s.root, parents[0], "views", viewKey(parents))
}
