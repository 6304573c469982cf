// Package cachedir keeps the directories of RUN --mount=type=cache: one
// directory per cache under a root (the state directory's cache mounts,
// ops.Worker.CacheMounts), never in a layer:
//
//	<root>/<hex digest of the id>/id        the id, for people
//	<root>/<hex digest of the id>/0         the cache's files
//	<root>/<hex digest of the id>/0.lock    flock(2)ed while in use
//	<root>/<hex digest of the id>/1 ...     copies for private users
//
// A shared user holds a shared lock on 0.lock and a locked user an
// exclusive one, so a locked step runs alone (across processes too). A
// private user takes the first copy nobody holds, creating one if needed.
package cachedir

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

	"github.com/builder-dev/builder/llb"
	"golang.org/x/sys/unix"
)

// Acquire locks the cache named key (a hex digest; id is the cache's id as
// written in RUN --mount, kept for people) under root for one user with
// the given sharing mode, and returns the directory to mount, which may not
// exist yet, and the function that releases the lock. A shared or locked
// user waits for the lock until ctx is done.
func Acquire(ctx context.Context, root, key, id, sharing string) (dir string, unlock func(), err error) {
	base := filepath.Join(root, key)
	if err := os.MkdirAll(base, 0o700); err != nil {
		return "", nil, err
	}
	if _, err := os.Stat(filepath.Join(base, "id")); err != nil {
		if err := os.WriteFile(filepath.Join(base, "id"), []byte(id), 0o600); err != nil {
			return "", nil, err
		}
	}
	n := 0
	switch sharing {
	case "", llb.SharingShared:
		unlock, err = lockFile(ctx, filepath.Join(base, "0.lock"), unix.LOCK_SH, true)
	case llb.SharingLocked:
		unlock, err = lockFile(ctx, filepath.Join(base, "0.lock"), unix.LOCK_EX, true)
	case llb.SharingPrivate:
		for ; ; n++ {
			unlock, err = lockFile(ctx, filepath.Join(base, strconv.Itoa(n)+".lock"), unix.LOCK_EX, false)
			if err != nil || unlock != nil {
				break
			}
		}
	default:
		return "", nil, fmt.Errorf("unknown cache sharing mode %q", sharing)
	}
	if err != nil {
		return "", nil, fmt.Errorf("locking cache %s: %w", id, err)
	}
	// Touched on each use, for `builder du`.
	now := time.Now()
	os.Chtimes(filepath.Join(base, "id"), now, now)
	return filepath.Join(base, strconv.Itoa(n)), unlock, nil
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

// Mount describes one cache mount of a state directory.
type Mount struct {
	// Dir is the cache's directory (all its copies).
	Dir string
	// ID is the cache's id as written in RUN --mount.
	ID       string
	Size     int64
	LastUsed time.Time
}

// List lists the cache mounts under dir.
func List(dir string) ([]Mount, error) {
	entries, err := os.ReadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var out []Mount
	for _, e := range entries {
		if !e.IsDir() || strings.HasPrefix(e.Name(), ".") {
			continue
		}
		c := Mount{Dir: filepath.Join(dir, e.Name())}
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

// Remove removes a cache mount unless a run is using it; it
// reports whether it did.
func Remove(ctx context.Context, c Mount) (bool, error) {
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

// Create makes the cache directory dir if it does not exist, filled by
// fill in a directory beside it and renamed into place, so a concurrent
// shared user or a crash never sees a half-made cache.
func Create(dir string, fill func(tmp string) error) error {
	if _, err := os.Lstat(dir); err == nil {
		return nil
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".new-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	if err := fill(tmp); err != nil {
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
