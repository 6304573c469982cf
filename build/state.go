// Package build is the entry point the CLI calls: it opens a state
// directory and wires the frontend, solver, ops, sources and exporter into
// builds, image listings and runs.
package build

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"time"

	"github.com/builder-dev/builder/build/snapmode"
	"github.com/builder-dev/builder/cache"
	"github.com/builder-dev/builder/cache/content"
	"github.com/builder-dev/builder/cache/coord"
	"github.com/builder-dev/builder/cache/gcplan"
	"github.com/builder-dev/builder/gc"
	"github.com/builder-dev/builder/imagestore"
	"github.com/builder-dev/builder/internal/userns"
	"github.com/builder-dev/builder/kept"
	"github.com/builder-dev/builder/snapshot"
	"github.com/builder-dev/builder/solver/ops"
	"github.com/builder-dev/builder/source"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// State is an open state directory.
type State struct {
	Root       string
	DB         *cache.DB
	Content    *content.Store
	Snapshots  snapshot.Snapshotter
	Registries *source.Registries
	// Images is the local image store.
	Images *imagestore.Store
	// Kept are the failed steps' filesystems kept by --on-error=keep.
	Kept *kept.Store
	// GC holds the leases of the builds running on this State and prunes.
	GC     *gc.Collector
	worker *ops.Worker
	tmp    string
	closed bool
	warnf  func(string)
}

func (s *State) warn(msg string) {
	if s.warnf != nil {
		s.warnf(msg)
	}
}

// StateOptions configures Open.
type StateOptions struct {
	// Insecure lists registries to reach over plain HTTP.
	Insecure []string
	// OnWait is called when another process holds the state dir, with a
	// description of it ("pid 1234 (builder build .)") or "" if unknown.
	OnWait func(holder string)
	// Warn receives problems that do not stop the work, such as leftovers
	// of killed builds that could not be removed.
	Warn func(string)
}

// DefaultRoot is /var/lib/builder for root, $XDG_DATA_HOME/builder otherwise.
func DefaultRoot() string {
	if os.Geteuid() == 0 && !userns.Rootless() {
		return "/var/lib/builder"
	}
	name := "builder"
	if userns.SingleID() {
		// Layers made with a full id mapping hold files of ids this
		// mapping cannot see (or delete): keep the two apart.
		name = "builder-single-id"
	}
	if x := os.Getenv("XDG_DATA_HOME"); x != "" {
		return filepath.Join(x, name)
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".local", "share", name)
}

// Open opens (creating if needed) the state directory at root and removes
// what a killed build left behind.
func Open(root string, opt StateOptions) (*State, error) {
	root, err := filepath.Abs(root)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("creating state directory: %w", err)
	}
	dbPath := filepath.Join(root, "meta.db")
	var onWait func()
	if opt.OnWait != nil {
		onWait = func() { opt.OnWait(coord.Holder(dbPath)) }
	}
	db, err := cache.Open(dbPath, onWait)
	if err != nil {
		return nil, err
	}
	s := &State{Root: root, DB: db, tmp: filepath.Join(root, "tmp"), warnf: opt.Warn}
	fail := func(err error) (*State, error) {
		db.Close()
		return nil, err
	}
	if s.Content, err = content.NewStore(filepath.Join(root, "content")); err != nil {
		return fail(err)
	}
	// In a user namespace, overlay keeps its metadata in user.* xattrs.
	copyMode, err := snapmode.CopyMode(root, s.tmp, userns.Rootless(), s.warn)
	if err != nil {
		return fail(err)
	}
	if s.Snapshots, err = snapshot.NewSnapshotter(filepath.Join(root, "snapshots"), snapshot.WithTempDir(s.tmp), snapshot.WithUserXattr(userns.Rootless()), snapshot.WithCopy(copyMode)); err != nil {
		return fail(err)
	}
	if err := s.cleanup(); err != nil {
		return fail(err)
	}
	if err := os.MkdirAll(s.tmp, 0o700); err != nil {
		return fail(err)
	}
	s.Registries = &source.Registries{Content: s.Content, Insecure: opt.Insecure, Sources: db}
	s.worker = &ops.Worker{
		DB: db, Snapshots: s.Snapshots, Registries: s.Registries,
		Puller:      &source.Puller{Registries: s.Registries, DB: db, Snapshots: s.Snapshots},
		TmpDir:      s.tmp,
		CacheMounts: filepath.Join(root, "cachemounts"),
	}
	s.Kept = &kept.Store{Dir: filepath.Join(root, "kept"), CacheMounts: s.worker.CacheMounts}
	s.GC = &gc.Collector{Root: root, DB: db, Content: s.Content, Snapshots: s.Snapshots, Kept: s.Kept}
	s.Images = &imagestore.Store{DB: db, Content: s.Content, Registries: s.Registries, Puller: s.worker.Puller, Platform: HostPlatform()}
	return s, nil
}

// Lowers returns the layer directories under the snapshot top, for a
// writable layer prepared over it.
func (s *State) Lowers(top string) ([]string, error) { return s.worker.Lowers(top) }

// TmpDir is the state directory's scratch directory. The cleanup at Open
// spares entries named "PID-..." while that process lives.
func (s *State) TmpDir() string { return s.tmp }

// Close releases the state directory. It may be called more than once.
func (s *State) Close() error {
	if s.closed {
		return nil
	}
	s.closed = true
	return errors.Join(s.worker.Close(), s.DB.Close())
}

// cleanup removes scratch directories and snapshot directories that no
// record names: what a killed process left. Another process's build may be
// writing such directories, so only a process that finds no other one
// using the state directory cleans, and only what was made before it
// looked (a process leases the directory before it makes anything).
func (s *State) cleanup() error {
	looked := time.Now()
	if busy, err := s.DB.OthersActive(); err != nil || busy {
		return err
	}
	// File times come from a clock that may lag by a tick.
	before := looked.Add(-50 * time.Millisecond)
	old := func(p string) bool {
		fi, err := os.Lstat(p)
		return err == nil && fi.ModTime().Before(before)
	}
	entries, _ := os.ReadDir(s.tmp)
	for _, e := range entries {
		// Scratch dirs of a `builder run` still going carry its pid.
		if pid, _, ok := strings.Cut(e.Name(), "-"); ok && processAlive(pid) || !old(filepath.Join(s.tmp, e.Name())) {
			continue
		}
		if err := removeAll(filepath.Join(s.tmp, e.Name())); err != nil {
			s.warn(fmt.Sprintf("could not clean up %s left by an earlier build: %v", filepath.Join(s.tmp, e.Name()), err))
		}
	}
	recs, err := s.DB.Snapshots()
	if err != nil {
		return err
	}
	known := map[string]bool{}
	for _, r := range recs {
		known[r.ID] = true
	}
	dirs, err := os.ReadDir(s.Snapshots.Root())
	if err != nil {
		return err
	}
	for _, d := range dirs {
		id := d.Name()
		if !old(filepath.Join(s.Snapshots.Root(), id)) {
			continue
		}
		if strings.HasPrefix(id, ".removing-") {
			// Remove renames before deleting; a crash can leave these.
			if err := removeAll(filepath.Join(s.Snapshots.Root(), id)); err != nil {
				s.warn(fmt.Sprintf("could not clean up %s left by an earlier build: %v", filepath.Join(s.Snapshots.Root(), id), err))
			}
			continue
		}
		if known[id] || strings.HasPrefix(id, ".") || id == "empty" {
			continue
		}
		if pid, _, ok := strings.Cut(id, "-"); ok && processAlive(pid) {
			continue
		}
		if err := s.Snapshots.Remove(id); err != nil {
			s.warn(fmt.Sprintf("could not remove the unfinished snapshot %s left by an earlier build: %v", id, err))
		}
	}
	return nil
}

func processAlive(pid string) bool {
	n, err := strconv.Atoi(pid)
	if err != nil || n <= 0 {
		return false
	}
	if n == os.Getpid() {
		return true
	}
	_, err = os.Stat("/proc/" + pid)
	return err == nil
}

// removeAll removes p even where overlay left directories without
// permissions (work/work is mode 000).
func removeAll(p string) error {
	if err := os.RemoveAll(p); err == nil {
		return nil
	}
	filepath.Walk(p, func(q string, info os.FileInfo, err error) error {
		if err == nil && info.IsDir() {
			os.Chmod(q, 0o700)
		}
		return nil
	})
	return os.RemoveAll(p)
}

// HostPlatform is the platform images are built for.
func HostPlatform() ocispec.Platform {
	return ocispec.Platform{OS: "linux", Architecture: runtime.GOARCH}
}

// DiskUsage reports what the build cache and the local image store occupy.
func (s *State) DiskUsage(ctx context.Context) (*gcplan.DiskUsage, error) {
	return s.GC.DiskUsage(ctx)
}

// Prune removes build cache that no image of the local store and no build
// running in this process needs, as opt selects.
func (s *State) Prune(ctx context.Context, opt gc.PruneOptions) (*gc.PruneReport, error) {
	return s.GC.Prune(ctx, opt)
}
