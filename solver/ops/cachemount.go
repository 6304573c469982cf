package ops

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/builder-dev/builder/executor"
	"github.com/builder-dev/builder/llb"
	"github.com/builder-dev/builder/snapshot"
	"github.com/builder-dev/builder/solver"
	"github.com/builder-dev/builder/source/localctx"
	"golang.org/x/sys/unix"
)

// Cache mounts (RUN --mount=type=cache) live in Worker.CacheMounts, one
// directory per cache, never in a layer:
//
//	<CacheMounts>/<hex digest of the id>/id        the id, for people
//	<CacheMounts>/<hex digest of the id>/0         the cache's files
//	<CacheMounts>/<hex digest of the id>/0.lock    flock(2)ed while in use
//	<CacheMounts>/<hex digest of the id>/1 ...     copies for private users
//
// A shared user holds a shared lock on 0.lock and a locked user an
// exclusive one, so a locked step runs alone (across processes too). A
// private user takes the first copy nobody holds, creating one if needed.

// cacheMount locks a cache directory for the run and mounts it.
func (o *execOp) cacheMount(ctx context.Context, rm *runMounts, m llb.ExecMount, inputs []solver.Result) error {
	if o.w.CacheMounts == "" {
		return errors.New("cache mounts need a state directory (Worker.CacheMounts is not set)")
	}
	key := cacheMountKey(m, inputs)
	base := filepath.Join(o.w.CacheMounts, key.Encoded())
	if err := os.MkdirAll(base, 0o700); err != nil {
		return err
	}
	id := m.ID
	if id == "" {
		id = m.Target
	}
	if _, err := os.Stat(filepath.Join(base, "id")); err != nil {
		if err := os.WriteFile(filepath.Join(base, "id"), []byte(id), 0o600); err != nil {
			return err
		}
	}
	var (
		n      int
		unlock func()
		err    error
	)
	switch m.Sharing {
	case "", llb.SharingShared:
		unlock, err = lockFile(ctx, filepath.Join(base, "0.lock"), unix.LOCK_SH, true)
	case llb.SharingLocked:
		unlock, err = lockFile(ctx, filepath.Join(base, "0.lock"), unix.LOCK_EX, true)
	case llb.SharingPrivate:
		for n = 0; ; n++ {
			unlock, err = lockFile(ctx, filepath.Join(base, strconv.Itoa(n)+".lock"), unix.LOCK_EX, false)
			if err != nil || unlock != nil {
				break
			}
		}
	default:
		return fmt.Errorf("unknown cache sharing mode %q", m.Sharing)
	}
	if err != nil {
		return fmt.Errorf("locking cache %s: %w", id, err)
	}
	rm.release = append(rm.release, unlock)
	dir := filepath.Join(base, strconv.Itoa(n))
	if err := o.createCache(ctx, dir, m, inputs); err != nil {
		return fmt.Errorf("creating cache %s: %w", id, err)
	}
	// Touched on each use, for `builder du`.
	now := time.Now()
	os.Chtimes(filepath.Join(base, "id"), now, now)
	rm.mounts = append(rm.mounts, executor.Mount{Type: executor.MountBind, Source: dir, Target: m.Target, Readonly: m.Readonly})
	return nil
}

// createCache creates the cache directory dir if it does not exist: empty
// or with the files of the mount's `from`, then the mount's owner and mode.
// It is made aside and renamed into place, so a concurrent shared user or
// a crash never sees a half-made cache.
func (o *execOp) createCache(ctx context.Context, dir string, m llb.ExecMount, inputs []solver.Result) error {
	if _, err := os.Lstat(dir); err == nil {
		return nil
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".new-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if m.Input > 0 && m.Input < len(inputs) {
		if err := o.seedCache(ctx, tmp, m, inputs[m.Input]); err != nil {
			return err
		}
	}
	if err := setOwnerMode(tmp, m, 0o755); err != nil {
		return err
	}
	if err := os.Rename(tmp, dir); err != nil {
		if errors.Is(err, fs.ErrExist) || errors.Is(err, unix.ENOTEMPTY) {
			return nil // another user made it first
		}
		return err
	}
	return nil
}

// seedCache copies the mount's source from its `from` file tree into dir.
func (o *execOp) seedCache(ctx context.Context, dir string, m llb.ExecMount, in solver.Result) error {
	rel := cleanRel(m.Source)
	if l, ok := o.mountLocal(m); ok {
		tree, err := localctx.NewTree(l.Dir, l.Excludes)
		if err != nil {
			return err
		}
		return copyTree(dir, tree, rel)
	}
	lowers, err := o.w.Lowers(in.Snapshot)
	if err != nil {
		return err
	}
	return o.w.Snapshots.WithMounts(ctx, [][]snapshot.Mount{o.w.Snapshots.View(lowers)}, func(roots []string) error {
		tree, err := localctx.NewTree(roots[0], nil)
		if err != nil {
			return err
		}
		tree.Serial = true
		return copyTree(dir, tree, rel)
	})
}

// lockFile flocks the file p (creating it) with how, LOCK_SH or LOCK_EX,
// and returns the unlock function. With wait it retries until ctx is done;
// without, it returns nil, nil when someone else holds the lock.
func lockFile(ctx context.Context, p string, how int, wait bool) (func(), error) {
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err := unix.Flock(int(f.Fd()), how|unix.LOCK_NB)
		if err == nil {
			return func() { f.Close() }, nil
		}
		if err != unix.EWOULDBLOCK && err != unix.EINTR {
			f.Close()
			return nil, &os.PathError{Op: "flock", Path: p, Err: err}
		}
		if !wait {
			f.Close()
			return nil, nil
		}
		select {
		case <-ctx.Done():
			f.Close()
			return nil, context.Cause(ctx)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// CacheMount describes one cache mount of a state directory.
type CacheMount struct {
	// Dir is the cache's directory (all its copies).
	Dir string
	// ID is the cache's id as written in RUN --mount.
	ID       string
	Size     int64
	LastUsed time.Time
}

// CacheMounts lists the cache mounts under dir (Worker.CacheMounts).
func CacheMounts(dir string) ([]CacheMount, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []CacheMount
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		c := CacheMount{Dir: filepath.Join(dir, e.Name())}
		if b, err := os.ReadFile(filepath.Join(c.Dir, "id")); err == nil {
			c.ID = string(b)
		}
		if fi, err := os.Stat(filepath.Join(c.Dir, "id")); err == nil {
			c.LastUsed = fi.ModTime()
		}
		filepath.WalkDir(c.Dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() {
				if fi, err := d.Info(); err == nil {
					c.Size += fi.Size()
				}
			}
			return nil
		})
		out = append(out, c)
	}
	return out, nil
}

// RemoveCacheMount removes a cache mount unless a run is using it; it
// reports whether it did.
func RemoveCacheMount(ctx context.Context, c CacheMount) (bool, error) {
	locks, _ := filepath.Glob(filepath.Join(c.Dir, "*.lock"))
	for _, l := range locks {
		unlock, err := lockFile(ctx, l, unix.LOCK_EX, false)
		if err != nil {
			return false, err
		}
		if unlock == nil {
			return false, nil // in use
		}
		defer unlock()
	}
	// Rename first, so a crash never leaves a partial cache under its name.
	trash := filepath.Join(filepath.Dir(c.Dir), ".removing-"+filepath.Base(c.Dir))
	if err := os.Rename(c.Dir, trash); err != nil {
		return false, err
	}
	if err := os.RemoveAll(trash); err != nil {
		return true, err
	}
	return true, nil
}
