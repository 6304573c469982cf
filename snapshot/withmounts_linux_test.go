//go:build linux

package snapshot

import (
	"errors"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/builder-dev/builder/internal/testutil"
)

// mountinfoHas reports whether the mountinfo file lists a mount at dir.
func mountinfoHas(t *testing.T, file, dir string) bool {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatalf("reading %s: %v", file, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && f[4] == dir {
			return true
		}
	}
	return false
}

// threadsOutside returns the threads of this process whose mount
// namespace differs from the process's.
func threadsOutside(t *testing.T) []string {
	t.Helper()
	self, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		t.Fatal(err)
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, task := range tasks {
		ns, err := os.Readlink(filepath.Join("/proc/self/task", task.Name(), "ns/mnt"))
		if err == nil && ns != self {
			out = append(out, task.Name()+" "+ns)
		}
	}
	return out
}

func TestWithMountsIsolation(t *testing.T) {
	testutil.RequiresRoot(t)
	s := newTestSnapshotter(t, WithTempDir(filepath.Join(t.TempDir(), "tmp")))
	sets := [][]Mount{
		{{Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m"}}},
		s.View(nil),
	}
	// The caller's thread must keep its namespace.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	callerNS, _ := os.Readlink("/proc/thread-self/ns/mnt")

	var roots []string
	err := s.WithMounts(t.Context(), sets, func(r []string) error {
		roots = r
		for _, root := range r {
			if !mountinfoHas(t, "/proc/thread-self/mountinfo", root) {
				t.Errorf("%s is not mounted on the calling thread", root)
			}
		}
		must(t, os.WriteFile(filepath.Join(r[0], "marker"), []byte("x"), 0o644))
		// Another goroutine runs on another thread (this one is locked)
		// and must see neither the mounts nor the file.
		done := make(chan error)
		go func() {
			var errs []error
			for _, f := range []string{"/proc/thread-self/mountinfo", "/proc/" + strconv.Itoa(os.Getpid()) + "/mountinfo"} {
				for _, root := range r {
					if mountinfoHas(t, f, root) {
						errs = append(errs, errors.New(root+" is visible in "+f))
					}
				}
			}
			if _, err := os.Stat(filepath.Join(r[0], "marker")); err == nil {
				errs = append(errs, errors.New("marker file visible from another thread"))
			}
			done <- errors.Join(errs...)
		}()
		return <-done
	})
	if err != nil {
		t.Fatalf("WithMounts() = %v", err)
	}
	if ns, _ := os.Readlink("/proc/thread-self/ns/mnt"); ns != callerNS {
		t.Errorf("caller's mount namespace changed from %s to %s", callerNS, ns)
	}
	for _, root := range roots {
		if mountinfoHas(t, "/proc/self/mountinfo", root) {
			t.Errorf("%s still mounted after WithMounts", root)
		}
		if _, err := os.Lstat(root); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("mount point %s not removed: %v", root, err)
		}
	}
	// The thread that held the namespace is gone (the runtime reaps it
	// shortly after the goroutine exits).
	deadline := time.Now().Add(5 * time.Second)
	for len(threadsOutside(t)) > 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if th := threadsOutside(t); len(th) > 0 {
		t.Errorf("threads still in another mount namespace: %v", th)
	}
}

func TestWithMountsErrors(t *testing.T) {
	testutil.RequiresRoot(t)
	tmp := filepath.Join(t.TempDir(), "tmp")
	s := newTestSnapshotter(t, WithTempDir(tmp))
	tmpfs := []Mount{{Type: "tmpfs", Source: "tmpfs"}}
	sentinel := errors.New("sentinel")

	tests := []struct {
		name      string
		sets      [][]Mount
		fn        func([]string) error
		wantErr   error
		wantPanic any
	}{
		{name: "fn error", sets: [][]Mount{tmpfs}, fn: func([]string) error { return sentinel }, wantErr: sentinel},
		{name: "fn panic", sets: [][]Mount{tmpfs}, fn: func([]string) error { panic("boom") }, wantPanic: "boom"},
		{name: "goexit", sets: [][]Mount{tmpfs}, fn: func([]string) error { runtime.Goexit(); return nil }, wantErr: errAny},
		{name: "bad mount", sets: [][]Mount{tmpfs, {{Type: "no-such-fs", Source: "x"}}}, fn: func([]string) error {
			t.Error("fn called although a mount failed")
			return nil
		}, wantErr: errAny},
		{name: "no sets", fn: func(r []string) error {
			if len(r) != 0 {
				return errors.New("roots for no sets")
			}
			return nil
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var err error
			var recovered any
			func() {
				defer func() { recovered = recover() }()
				err = s.WithMounts(t.Context(), tt.sets, tt.fn)
			}()
			if recovered != tt.wantPanic {
				t.Errorf("WithMounts() panicked with %v, want %v", recovered, tt.wantPanic)
			}
			switch {
			case tt.wantErr == errAny && err == nil:
				t.Error("WithMounts() = nil, want an error")
			case tt.wantErr != errAny && !errors.Is(err, tt.wantErr):
				t.Errorf("WithMounts() = %v, want %v", err, tt.wantErr)
			}
			if left, _ := os.ReadDir(tmp); len(left) != 0 {
				t.Errorf("mount points left in %s: %v", tmp, left)
			}
		})
	}
}

var errAny = errors.New("any error")
