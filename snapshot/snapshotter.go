package snapshot

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/builder-dev/builder/internal/archive"
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
// Lifecycle: Prepare(id, parents...) -> mount Mounts(id, parents) -> run
// things (writes land in UpperDir(id)) -> unmount -> Commit(id). A
// committed snapshot is immutable; it is used as a parent of later
// snapshots, mounted read-only with View, turned into a tar with
// WriteDiff(FS(id)), and finally removed with Remove(id). Which ids exist
// and how they relate is recorded by the caller (the cache package); the
// Snapshotter keeps no metadata of its own.
//
// Two implementations share this layout: the overlay one (the default),
// whose mounts are overlays of the layers, and the copy one (WithCopy), for
// hosts where overlayfs cannot be mounted. A layer directory does not say
// which made it. A Snapshotter holds no in-memory state beyond its options,
// so several Snapshotters (or processes) may share a root as long as they
// do not use the same id concurrently.
type Snapshotter interface {
	// Root returns the snapshotter's root directory.
	Root() string
	// UserXattr reports whether the snapshotter uses user.overlay.* xattrs.
	UserXattr() bool
	// CopyMode reports whether the snapshotter is the copy one.
	CopyMode() bool

	// FS returns the layer directory of id (in overlay upper format).
	FS(id string) string
	// Exists reports whether id has a layer directory.
	Exists(id string) bool
	// IsEmpty reports whether id's layer directory has no entries, meaning
	// the snapshot changed nothing (the image config can mark it
	// empty_layer).
	IsEmpty(id string) (bool, error)
	// Usage returns the bytes id's layer occupies on disk (allocated
	// blocks, hard links counted once).
	Usage(id string) (int64, error)

	// Prepare creates an active snapshot id with an empty layer. It fails
	// if id already exists, including a half-prepared id left by a crash;
	// Remove it first. parents (top-most first) must be the parents later
	// passed to Mounts.
	Prepare(id string, parents ...string) error
	// Mounts returns the read-write mounts of the active snapshot id on
	// top of parents (parents[0] is the top-most).
	Mounts(id string, parents []string) []Mount
	// UpperDir returns the directory that receives the writes of the
	// active snapshot id. Executors remove the mount point stubs they
	// created from it.
	UpperDir(id string) string
	// Commit makes id immutable and flushes its layer to disk, so that a
	// crash after Commit returns does not lose it. The snapshot must no
	// longer be mounted.
	Commit(id string) error
	// CommitUnsynced is Commit without the flush: id is immutable, and
	// durable only once a Sync that began after CommitUnsynced returned
	// has returned. Until then no record that outlives a crash may name
	// it. Several layers then cost one flush.
	CommitUnsynced(id string) error
	// OpenSync opens root's file system for Syncs that flush every
	// layer committed so far (one syncfs, which journaled file systems
	// pay with a commit). Its Sync reports every writeback error since
	// OpenSync, even one another syncfs saw first: open it before the
	// layers it is to make durable are written.
	OpenSync() (Syncer, error)
	// View returns a read-only mount of parents (parents[0] is the
	// top-most). With no parents it is a read-only bind of an empty
	// directory.
	View(parents []string) []Mount
	// Remove deletes id. Removing an id that does not exist is not an
	// error.
	Remove(id string) error

	// WithMounts mounts each set of mounts at a fresh temporary directory
	// and calls fn with those directories, in the order of sets; see
	// the package function WithMounts for the rules fn must follow.
	WithMounts(ctx context.Context, sets [][]Mount, fn func(roots []string) error) error
}

// options holds what Options set.
type options struct {
	tmp       string
	userXattr bool
	copy      bool
}

// Option configures a Snapshotter.
type Option func(*options)

// WithUserXattr selects rootless mode: overlays are mounted with the
// userxattr option and overlay metadata (opaque directories) lives in the
// user.overlay.* xattr namespace instead of trusted.overlay.*, which an
// unprivileged user namespace cannot write.
func WithUserXattr(on bool) Option {
	return func(o *options) { o.userXattr = on }
}

// WithTempDir sets where WithMounts creates its mount points. The default
// is the tmp directory next to root (root/../tmp), which is on the state
// directory's filesystem and is cleaned by the state directory's owner.
func WithTempDir(dir string) Option {
	return func(o *options) { o.tmp = dir }
}

// WithCopy selects the copy snapshotter: Prepare copies the parents'
// merged view into a directory that Mounts bind-mounts, and Commit stores
// the difference as an overlay-format layer. Use it where overlay mounts
// fail.
func WithCopy(on bool) Option {
	return func(o *options) { o.copy = on }
}

// layout is what both snapshotters share: the directories under root and
// the operations that do not depend on how a snapshot is mounted.
type layout struct {
	root      string
	tmp       string
	userXattr bool
}

// emptyDir is the name of the always-empty bottom layer under root.
const emptyDir = "empty"

// NewSnapshotter returns a Snapshotter over root, creating root and
// root/empty if needed: the overlay one, or the copy one WithCopy.
func NewSnapshotter(root string, opts ...Option) (Snapshotter, error) {
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
	var o options
	for _, opt := range opts {
		opt(&o)
	}
	l := layout{root: abs, tmp: o.tmp, userXattr: o.userXattr}
	if l.tmp == "" {
		l.tmp = filepath.Join(filepath.Dir(abs), "tmp")
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("creating snapshot root: %w", err)
	}
	if err := l.ensureEmpty(); err != nil {
		return nil, err
	}
	if o.copy {
		return &copySnapshotter{l}, nil
	}
	return &overlaySnapshotter{l}, nil
}

// ensureEmpty makes root/empty exist, be empty and be 0755: it is the root
// directory of a View with no parents, and anything in it would show up in
// every overlay.
func (s *layout) ensureEmpty() error {
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
func (s *layout) Root() string { return s.root }

// UserXattr reports whether the snapshotter uses user.overlay.* xattrs.
func (s *layout) UserXattr() bool { return s.userXattr }

func checkID(id string) error {
	if id == "" || id == "." || id == ".." || id == emptyDir ||
		strings.HasPrefix(id, ".") || strings.ContainsAny(id, "/,:\x00") {
		return fmt.Errorf("invalid snapshot id %q: must be non-empty, not %q, not start with '.', and not contain '/', ',' or ':'", id, emptyDir)
	}
	return nil
}

func (s *layout) dir(id string) string  { return filepath.Join(s.root, id) }
func (s *layout) work(id string) string { return filepath.Join(s.root, id, "work") }

// FS returns the layer directory of id (in overlay upper format).
func (s *layout) FS(id string) string { return filepath.Join(s.root, id, "fs") }

// Exists reports whether id has a layer directory.
func (s *layout) Exists(id string) bool {
	if checkID(id) != nil {
		return false
	}
	fi, err := os.Lstat(s.FS(id))
	return err == nil && fi.IsDir()
}

// prepare makes the directories of a new active snapshot id: its empty
// layer and a workdir.
func (s *layout) prepare(id string) error {
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
	return nil
}

// commit makes id immutable: it runs seal (the implementation's part),
// removes the workdir and, with flush, flushes the layer to disk, so that
// a crash after Commit returns does not lose it.
func (s *layout) commit(id string, flush bool, seal func() error) error {
	if err := checkID(id); err != nil {
		return err
	}
	if !s.Exists(id) {
		return fmt.Errorf("committing snapshot %s: %w", id, os.ErrNotExist)
	}
	if err := seal(); err != nil {
		return fmt.Errorf("committing snapshot %s: %w", id, err)
	}
	// Overlay leaves work/work with mode 000; removeAll copes with that.
	if err := removeAll(s.work(id)); err != nil {
		return fmt.Errorf("committing snapshot %s: removing workdir: %w", id, err)
	}
	if !flush {
		return nil
	}
	if err := syncFS(s.FS(id)); err != nil {
		return fmt.Errorf("committing snapshot %s: %w", id, err)
	}
	return nil
}

// Syncer flushes a file system, see Snapshotter.OpenSync.
type Syncer interface {
	Sync() error
	Close() error
}

// OpenSync opens the file system of root for Syncer.Sync.
func (s *layout) OpenSync() (Syncer, error) {
	f, err := openSync(s.root)
	if err != nil {
		return nil, fmt.Errorf("opening the snapshots for flushing: %w", err)
	}
	return f, nil
}

// Remove deletes id. Removing an id that does not exist is not an error.
// The directory is first renamed away, so a crash part way through leaves
// no partly deleted layer under its id; NewSnapshotter does not clean the
// renamed leftovers (named .removing-*), the owner of the state directory
// may.
func (s *layout) Remove(id string) error {
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
func (s *layout) IsEmpty(id string) (bool, error) {
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
func (s *layout) Usage(id string) (int64, error) {
	if err := checkID(id); err != nil {
		return 0, err
	}
	n, err := diskUsage(s.FS(id))
	if err != nil {
		return 0, fmt.Errorf("usage of snapshot %s: %w", id, err)
	}
	return n, nil
}

// emptyView is the View of no parents: a read-only bind of root/empty.
func (s *layout) emptyView() []Mount {
	return []Mount{{Type: "bind", Source: filepath.Join(s.root, emptyDir), Options: []string{"rbind", "ro"}}}
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

// removeAll removes p even where modes forbid it (overlay's work/work is
// mode 000).
func removeAll(p string) error { return archive.RemoveAll(p) }
