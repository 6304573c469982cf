package snapshot

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// Snapshotter keeps layer directories under one root directory (the state
// directory's snapshots/):
//
//	root/<id>/fs    the layer, in overlay "upper" format: whiteouts are 0/0
//	                character devices, opaque directories carry the
//	                <ns>.overlay.opaque=y xattr (ns is trusted, or user with
//	                WithUserXattr)
//	root/<id>/work  the overlay workdir, present only while the snapshot is
//	                active (between Prepare and Commit)
//	root/empty      an always-empty directory used as the bottom lowerdir, so
//	                that every overlay has at least two lowers and a view of
//	                any number of parents can be mounted read-only
//
// Lifecycle: Prepare(id) -> mount Mounts(id, parents) -> run things ->
// unmount -> Commit(id). A committed snapshot is immutable; it is used as a
// parent of later snapshots, turned into a tar with WriteDiff(FS(id)), and
// finally removed with Remove(id). Which ids exist and how they relate is
// recorded by the caller (the cache package); the Snapshotter keeps no
// metadata of its own.
//
// A Snapshotter holds no in-memory state beyond its options, so several
// Snapshotters (or processes) may share a root as long as they do not use
// the same id concurrently.
type Snapshotter struct {
	root      string
	tmp       string
	userXattr bool
	// copy selects the copy-based mode (see copy.go).
	copy bool
}

// Option configures a Snapshotter.
type Option func(*Snapshotter)

// WithUserXattr selects rootless mode: overlays are mounted with the
// userxattr option and overlay metadata (opaque directories) lives in the
// user.overlay.* xattr namespace instead of trusted.overlay.*, which an
// unprivileged user namespace cannot write.
func WithUserXattr(on bool) Option {
	return func(s *Snapshotter) { s.userXattr = on }
}

// WithTempDir sets where WithMounts creates its mount points. The default
// is the tmp directory next to root (root/../tmp), which is on the state
// directory's filesystem and is cleaned by the state directory's owner.
func WithTempDir(dir string) Option {
	return func(s *Snapshotter) { s.tmp = dir }
}

// emptyDir is the name of the always-empty bottom layer under root.
const emptyDir = "empty"

// NewSnapshotter returns a Snapshotter over root, creating root and
// root/empty if needed.
func NewSnapshotter(root string, opts ...Option) (*Snapshotter, error) {
	if err := checkPlatform(); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("snapshot root %s: %w", root, err)
	}
	// Overlay mount data is a comma-separated list and lowerdir is a
	// colon-separated list; paths containing either cannot be passed.
	if strings.ContainsAny(abs, ",:") {
		return nil, fmt.Errorf("snapshot root %s: the path must not contain ',' or ':' because overlay mount options cannot carry them; choose another state directory", abs)
	}
	s := &Snapshotter{root: abs}
	for _, o := range opts {
		o(s)
	}
	if s.tmp == "" {
		s.tmp = filepath.Join(filepath.Dir(abs), "tmp")
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("creating snapshot root: %w", err)
	}
	if err := s.ensureEmpty(); err != nil {
		return nil, err
	}
	return s, nil
}

// ensureEmpty makes root/empty exist, be empty and be 0755: it is the root
// directory of a View with no parents, and anything in it would show up in
// every overlay.
func (s *Snapshotter) ensureEmpty() error {
	p := filepath.Join(s.root, emptyDir)
	empty, err := dirIsEmpty(p)
	switch {
	case errors.Is(err, os.ErrNotExist):
	case err != nil:
		return fmt.Errorf("checking empty layer: %w", err)
	case empty:
		return os.Chmod(p, 0o755)
	default:
		if err := removeAll(p); err != nil {
			return fmt.Errorf("resetting empty layer: %w", err)
		}
	}
	if err := os.Mkdir(p, 0o755); err != nil && !errors.Is(err, os.ErrExist) {
		return fmt.Errorf("creating empty layer: %w", err)
	}
	// Mkdir is subject to umask.
	return os.Chmod(p, 0o755)
}

// Root returns the snapshotter's root directory.
func (s *Snapshotter) Root() string { return s.root }

// UserXattr reports whether the snapshotter uses user.overlay.* xattrs.
func (s *Snapshotter) UserXattr() bool { return s.userXattr }

func checkID(id string) error {
	if id == "" || id == "." || id == ".." || id == emptyDir ||
		strings.HasPrefix(id, ".") || strings.ContainsAny(id, "/,:\x00") {
		return fmt.Errorf("invalid snapshot id %q: must be non-empty, not %q, not start with '.', and not contain '/', ',' or ':'", id, emptyDir)
	}
	return nil
}

func (s *Snapshotter) dir(id string) string  { return filepath.Join(s.root, id) }
func (s *Snapshotter) work(id string) string { return filepath.Join(s.root, id, "work") }

// FS returns the layer directory of id (in overlay upper format).
func (s *Snapshotter) FS(id string) string { return filepath.Join(s.root, id, "fs") }

// Exists reports whether id has a layer directory.
func (s *Snapshotter) Exists(id string) bool {
	if checkID(id) != nil {
		return false
	}
	fi, err := os.Lstat(s.FS(id))
	return err == nil && fi.IsDir()
}

// Prepare creates an active snapshot id with an empty layer and a workdir.
// It fails if id already exists, including a half-prepared id left by a
// crash; Remove it first. parents (top-most first) must be the parents
// later passed to Mounts; the overlay mode does not need them, the copy
// mode (WithCopy) builds the snapshot's root directory from them.
func (s *Snapshotter) Prepare(id string, parents ...string) error {
	if err := checkID(id); err != nil {
		return err
	}
	d := s.dir(id)
	if err := os.Mkdir(d, 0o700); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("preparing snapshot %s: %w", id, os.ErrExist)
		}
		return fmt.Errorf("preparing snapshot %s: %w", id, err)
	}
	if err := os.Mkdir(s.FS(id), 0o755); err != nil {
		return fmt.Errorf("preparing snapshot %s: %w", id, err)
	}
	// The upper directory's mode becomes the mode of the mounted root; do
	// not let the umask decide it.
	if err := os.Chmod(s.FS(id), 0o755); err != nil {
		return fmt.Errorf("preparing snapshot %s: %w", id, err)
	}
	if err := os.Mkdir(s.work(id), 0o700); err != nil {
		return fmt.Errorf("preparing snapshot %s: %w", id, err)
	}
	if s.copy {
		if err := s.prepareCopy(id, parents); err != nil {
			return fmt.Errorf("preparing snapshot %s: %w", id, err)
		}
	}
	return nil
}

// Commit makes id immutable: it removes the workdir and flushes the layer
// to disk, so that a crash after Commit returns does not lose it. The
// snapshot must no longer be mounted.
func (s *Snapshotter) Commit(id string) error {
	if err := checkID(id); err != nil {
		return err
	}
	if !s.Exists(id) {
		return fmt.Errorf("committing snapshot %s: %w", id, os.ErrNotExist)
	}
	if err := s.commitCopy(id); err != nil {
		return fmt.Errorf("committing snapshot %s: %w", id, err)
	}
	// Overlay leaves work/work with mode 000; removeAll copes with that.
	if err := removeAll(s.work(id)); err != nil {
		return fmt.Errorf("committing snapshot %s: removing workdir: %w", id, err)
	}
	if err := syncFS(s.FS(id)); err != nil {
		return fmt.Errorf("committing snapshot %s: %w", id, err)
	}
	return nil
}

// Remove deletes id. Removing an id that does not exist is not an error.
// The directory is first renamed away, so a crash part way through leaves
// no partly deleted layer under its id; NewSnapshotter does not clean the
// renamed leftovers (named .removing-*), the owner of the state directory
// may.
func (s *Snapshotter) Remove(id string) error {
	if err := checkID(id); err != nil {
		return err
	}
	d := s.dir(id)
	trash, err := os.MkdirTemp(s.root, ".removing-"+id+"-")
	if err != nil {
		return fmt.Errorf("removing snapshot %s: %w", id, err)
	}
	moved := filepath.Join(trash, id)
	if err := os.Rename(d, moved); err != nil {
		_ = os.Remove(trash)
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("removing snapshot %s: %w", id, err)
	}
	if err := removeAll(trash); err != nil {
		return fmt.Errorf("removing snapshot %s: %w", id, err)
	}
	return nil
}

// IsEmpty reports whether id's layer directory has no entries, meaning the
// snapshot changed nothing (the image config can mark it empty_layer).
func (s *Snapshotter) IsEmpty(id string) (bool, error) {
	if err := checkID(id); err != nil {
		return false, err
	}
	empty, err := dirIsEmpty(s.FS(id))
	if err != nil {
		return false, fmt.Errorf("snapshot %s: %w", id, err)
	}
	return empty, nil
}

// Usage returns the bytes id's layer occupies on disk (allocated blocks,
// hard links counted once).
func (s *Snapshotter) Usage(id string) (int64, error) {
	if err := checkID(id); err != nil {
		return 0, err
	}
	n, err := diskUsage(s.FS(id))
	if err != nil {
		return 0, fmt.Errorf("usage of snapshot %s: %w", id, err)
	}
	return n, nil
}

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

func (s *Snapshotter) lowerdir(parents []string) string {
	dirs := make([]string, 0, len(parents)+1)
	for _, p := range parents {
		dirs = append(dirs, s.FS(p))
	}
	dirs = append(dirs, filepath.Join(s.root, emptyDir))
	return "lowerdir=" + strings.Join(dirs, ":")
}

func (s *Snapshotter) options(parents []string) []string {
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
func (s *Snapshotter) Mounts(id string, parents []string) []Mount {
	if s.copy {
		return []Mount{{Type: "bind", Source: s.rootfs(id), Options: []string{"bind"}}}
	}
	opts := s.options(parents)
	opts = append(opts, "upperdir="+s.FS(id), "workdir="+s.work(id))
	return []Mount{{Type: "overlay", Source: "overlay", Options: opts}}
}

// View returns a read-only mount of parents (parents[0] is the top-most).
// With no parents it is a read-only bind of the empty directory.
func (s *Snapshotter) View(parents []string) []Mount {
	if len(parents) == 0 {
		return []Mount{{Type: "bind", Source: filepath.Join(s.root, emptyDir), Options: []string{"rbind", "ro"}}}
	}
	if s.copy {
		return s.copyView(parents)
	}
	// Without an upperdir overlay is read-only by itself; "ro" also makes
	// the mount flags say so.
	return []Mount{{Type: "overlay", Source: "overlay", Options: append([]string{"ro"}, s.options(parents)...)}}
}

// dirIsEmpty reports whether dir has no entries.
func dirIsEmpty(dir string) (bool, error) {
	f, err := os.Open(dir)
	if err != nil {
		return false, err
	}
	defer f.Close()
	_, err = f.Readdirnames(1)
	if err == io.EOF {
		return true, nil
	}
	if err != nil {
		return false, fmt.Errorf("reading %s: %w", dir, err)
	}
	return false, nil
}

// removeAll is os.RemoveAll that also removes directories whose mode forbids
// it (overlay's work/work is mode 000, and a layer may hold 0555 dirs),
// which matters when running without CAP_DAC_OVERRIDE.
func removeAll(p string) error {
	if err := os.RemoveAll(p); err == nil {
		return nil
	}
	// WalkDir calls fn on a directory before reading it, so the chmod
	// lands in time for the walk to descend.
	_ = filepath.WalkDir(p, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(path, 0o700)
		}
		return nil
	})
	return os.RemoveAll(p)
}
