package snapshot

import (
	"context"
	"os"
)

// WithMounts mounts each set of mounts at a fresh temporary directory under
// os.TempDir() and calls fn with those directories, in the order of sets.
// It is (*Snapshotter).WithMounts for callers without a Snapshotter; the
// same rules apply: the mounts are visible only on the goroutine running
// fn, so fn must not start goroutines that touch the paths.
func WithMounts(ctx context.Context, sets [][]Mount, fn func(roots []string) error) error {
	return withMounts(ctx, os.TempDir(), sets, fn)
}

// WithMounts mounts each set of mounts at a fresh temporary directory and
// calls fn with those directories, in the order of sets. The directories
// are created under the snapshotter's temp directory (see WithTempDir) and
// removed afterwards.
//
// The mounts live in a private mount namespace of one OS thread, which fn
// runs on. Nothing else in the process or on the host sees them, and they
// cannot outlive the call: when fn returns the thread is discarded by the Go
// runtime together with its namespace, and a SIGKILL takes the namespace
// down with the process. (A SIGKILL may leave the empty mount-point
// directories behind.)
//
// Because of that, fn must not hand the paths to other goroutines, nor start
// goroutines that touch them: those run on other threads, where the paths are
// empty directories. Child processes started by fn (os/exec) inherit the
// namespace and do see the mounts. A panic in fn is re-raised in the caller's
// goroutine; its error is returned as is.
func (s *layout) WithMounts(ctx context.Context, sets [][]Mount, fn func(roots []string) error) error {
	if err := os.MkdirAll(s.tmp, 0o700); err != nil {
		return err
	}
	return withMounts(ctx, s.tmp, sets, fn)
}
