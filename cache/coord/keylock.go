package coord

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

// Builds in different processes that need the same step coordinate
// through a lock file per cache key, <dir>/<algorithm>-<hex>: the first
// locks it and computes the step, the others wait and then find the result
// in the cache. The holder removes the file before unlocking it, and a
// locker checks that the file it locked is still the one at the path, so
// that two processes never hold "the" lock through different files. A
// killed holder's flock goes with it.

// KeyLock is a held lock on a cache key.
type KeyLock struct {
	f    *os.File
	path string
}

// LockKey locks key across processes, with a file in dir, waiting while
// another holds it; waiting is called once, with a description of the
// holder as Holder gives it, if it has to wait.
func LockKey(ctx context.Context, dir string, key digest.Digest, waiting func(holder string)) (*KeyLock, error) {
	if err := key.Validate(); err != nil {
		return nil, fmt.Errorf("locking cache key %q: %w", key, err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("creating lock directory: %w", err)
	}
	p := filepath.Join(dir, key.Algorithm().String()+"-"+key.Encoded())
	told := false
	for {
		f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, fmt.Errorf("locking cache key %s: %w", key, err)
		}
		err = flock(f, unix.LOCK_EX|unix.LOCK_NB)
		if err == unix.EWOULDBLOCK {
			if !told && waiting != nil {
				told = true
				waiting(Holder(p))
			}
			err = waitFlock(ctx, f)
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("locking cache key %s: %w", key, err)
		}
		if isFile(f, p) {
			return &KeyLock{f: f, path: p}, nil
		}
		// The holder removed it as we waited: lock the new one.
		f.Close()
	}
}

// waitFlock waits for an exclusive lock on f until ctx ends. flock(2)
// cannot be cancelled, so the wait polls, briefly at first.
func waitFlock(ctx context.Context, f *os.File) error {
	delay := time.Millisecond
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(delay):
		}
		err := flock(f, unix.LOCK_EX|unix.LOCK_NB)
		if !errors.Is(err, unix.EWOULDBLOCK) {
			return err
		}
		delay = min(2*delay, 20*time.Millisecond)
	}
}

// Unlock releases the lock. It may be called more than once.
func (l *KeyLock) Unlock() error {
	if l == nil || l.f == nil {
		return nil
	}
	err := os.Remove(l.path)
	if cerr := l.f.Close(); err == nil {
		err = cerr
	}
	l.f = nil
	return err
}
