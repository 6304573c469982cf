//go:build linux

package snapshot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"

	"golang.org/x/sys/unix"
)

// mountResult carries the outcome of the namespaced goroutine back to the
// caller.
type mountResult struct {
	err      error
	panicked bool
	value    any
}

func withMounts(ctx context.Context, tmp string, sets [][]Mount, fn func(roots []string) error) (retErr error) {
	if err := ctx.Err(); err != nil {
		return err
	}
	roots := make([]string, 0, len(sets))
	defer func() {
		// By now the namespace holding the mounts is unmounted or being
		// discarded; on the host these are plain empty directories.
		for _, r := range roots {
			if err := os.Remove(r); err != nil && !errors.Is(err, os.ErrNotExist) {
				retErr = errors.Join(retErr, fmt.Errorf("removing mount point: %w", err))
			}
		}
	}()
	for range sets {
		d, err := os.MkdirTemp(tmp, "mnt-")
		if err != nil {
			return fmt.Errorf("creating mount point: %w", err)
		}
		roots = append(roots, d)
	}

	done := make(chan mountResult, 1)
	// A fresh goroutine, so the caller's thread never changes namespace.
	go onThrowawayThread(func() {
		res := mountResult{panicked: true}
		defer func() {
			if res.panicked {
				// Either a panic (recover returns it) or runtime.Goexit.
				res.value = recover()
				if res.value == nil {
					res.panicked = false
					res.err = errors.New("mounted function called runtime.Goexit")
				}
			}
			done <- res
		}()
		res.err = runMounted(sets, roots, fn)
		res.panicked = false
	})
	res := <-done
	if res.panicked {
		panic(res.value)
	}
	return res.err
}

// onThrowawayThread runs f on a goroutine locked to a thread that is not
// the process's main thread, and never unlocks it: when a goroutine exits
// while locked, the runtime terminates its thread, and with it whatever
// namespace f moved the thread into. (The runtime also never clones new
// threads from a thread locked this way, so the namespace cannot spread.)
//
// The main thread is the exception: the runtime cannot terminate it and
// parks it forever instead, which would leave /proc/<pid>/mountinfo and
// /proc/<pid>/ns/mnt showing f's namespace for the rest of the process. So
// if we land on it, we keep it locked (no other goroutine can run on it)
// while a second goroutine, necessarily on another thread, runs f.
func onThrowawayThread(f func()) {
	runtime.LockOSThread()
	if unix.Gettid() != unix.Getpid() {
		f()
		return // still locked: the thread goes away
	}
	done := make(chan struct{})
	go func() {
		runtime.LockOSThread()
		defer close(done)
		f()
	}()
	<-done
	runtime.UnlockOSThread()
}

// runMounted runs on a locked thread: it moves the thread into a new mount
// namespace, mounts, calls fn, and unmounts.
func runMounted(sets [][]Mount, roots []string, fn func([]string) error) (retErr error) {
	// CLONE_NEWNS implies CLONE_FS: this thread also gets its own cwd and
	// root, which is what makes it legal in a multi-threaded process.
	if err := unix.Unshare(unix.CLONE_NEWNS); err != nil {
		return &os.SyscallError{Syscall: "unshare(CLONE_NEWNS)", Err: err}
	}
	// The copied mounts are still peers of the host's shared mounts; make
	// them slaves so nothing mounted here propagates back, while unmounts
	// on the host still propagate in.
	if err := unix.Mount("", "/", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return &MountError{Op: "make rslave", Target: "/", Err: err}
	}
	mounted := 0
	defer func() {
		for i := mounted - 1; i >= 0; i-- {
			// A set's mounts are stacked on one target; undo each.
			for range sets[i] {
				if err := Unmount(roots[i]); err != nil {
					retErr = errors.Join(retErr, err)
					break
				}
			}
		}
	}()
	for i, set := range sets {
		if err := mountSet(set, roots[i]); err != nil {
			return err
		}
		mounted++
	}
	return fn(roots)
}

// mountSet mounts set at target; on failure it undoes the part that was
// mounted, so the caller only unmounts complete sets.
func mountSet(set []Mount, target string) error {
	for i, m := range set {
		if err := m.Mount(target); err != nil {
			for j := 0; j < i; j++ {
				_ = Unmount(target)
			}
			return err
		}
	}
	return nil
}
