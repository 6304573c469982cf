package snapshot

import (
	"path/filepath"
	"strings"
)

// overlaySnapshotter mounts a snapshot as an overlay whose upper directory
// is its layer directory: the layer is exactly what was written, and
// Commit only removes the workdir.
type overlaySnapshotter struct{ layout }

var _ Snapshotter = (*overlaySnapshotter)(nil)

func (s *overlaySnapshotter) CopyMode() bool { return false }

// Prepare creates the empty layer and the overlay workdir; the parents are
// needed only by Mounts.
func (s *overlaySnapshotter) Prepare(id string, _ ...string) error { return s.prepare(id) }

// Commit removes the workdir and syncs the layer.
func (s *overlaySnapshotter) Commit(id string) error {
	return s.commit(id, true, func() error { return nil })
}

// CommitUnsynced removes the workdir.
func (s *overlaySnapshotter) CommitUnsynced(id string) error {
	return s.commit(id, false, func() error { return nil })
}

// UpperDir is the layer directory itself.
func (s *overlaySnapshotter) UpperDir(id string) string { return s.FS(id) }

// overlayOptions are always passed to overlay. index, redirect_dir and
// metacopy off keep the upper directory a pure diff: without them overlay
// may record a renamed directory as a redirect xattr or a copied-up file as
// metadata only, neither of which can be expressed in a tar layer. With
// redirects disabled, rename(2) of a directory that exists in a lower layer
// fails with EXDEV, and tools such as mv fall back to copying.
var overlayOptions = []string{"index=off", "redirect_dir=off", "metacopy=off"}

// userOverlayOptions replace overlayOptions with userxattr. The kernel
// rejects userxattr with redirect_dir=off, because "off" still follows
// existing redirects (it means "follow" under the default
// redirect_always_follow=Y) and userxattr forbids following them
// ("overlayfs: conflicting options: userxattr,redirect_dir=follow").
// "nofollow" neither creates nor follows redirects.
var userOverlayOptions = []string{"index=off", "redirect_dir=nofollow", "metacopy=off", "userxattr"}

func (s *layout) lowerdir(parents []string) string {
	dirs := make([]string, 0, len(parents)+1)
	for _, p := range parents {
		dirs = append(dirs, s.FS(p))
	}
	dirs = append(dirs, filepath.Join(s.root, emptyDir))
	return "lowerdir=" + strings.Join(dirs, ":")
}

func (s *layout) options(parents []string) []string {
	opts := append([]string(nil), overlayOptions...)
	if s.userXattr {
		opts = append([]string(nil), userOverlayOptions...)
	}
	return append(opts, s.lowerdir(parents))
}

// Mounts returns the read-write overlay for the active snapshot id: upper
// is id's layer, lowers are the parents' layers (parents[0] is the top-most)
// and then root/empty. The kernel limits mount data to one page, which
// bounds the number of parents at roughly 4000/len(FS(parent)); Mount
// reports a mount that exceeds it.
func (s *overlaySnapshotter) Mounts(id string, parents []string) []Mount {
	opts := s.options(parents)
	opts = append(opts, "upperdir="+s.FS(id), "workdir="+s.work(id))
	return []Mount{{Type: "overlay", Source: "overlay", Options: opts}}
}

// View returns a read-only mount of parents (parents[0] is the top-most).
// With no parents it is a read-only bind of the empty directory.
func (s *overlaySnapshotter) View(parents []string) []Mount {
	if len(parents) == 0 {
		return s.emptyView()
	}
	// Without an upperdir overlay is read-only by itself; "ro" also makes
	// the mount flags say so.
	return []Mount{{Type: "overlay", Source: "overlay", Options: append([]string{"ro"}, s.options(parents)...)}}
}
