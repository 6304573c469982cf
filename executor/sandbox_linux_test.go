package executor_test

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/builder-dev/builder/executor"
	"github.com/builder-dev/builder/internal/userns"
	"golang.org/x/sys/unix"
)

// Attack tests: each tries a way out of the sandbox that a hostile
// Dockerfile or image could take, and checks the error it must meet.

// TestProcSysNotPlainDirRefused: an image whose /proc or /sys is a symlink
// (made by COPY --from of a stage, or carried in a layer) or a file would
// make proc be mounted at the link's target and the masks miss it. The
// sandbox refuses it, as runc does, and mounts nothing outside the rootfs.
func TestProcSysNotPlainDirRefused(t *testing.T) {
	hostTarget := filepath.Join("/", "builder-attack-"+strconv.Itoa(os.Getpid()))
	tests := []struct {
		name, path, link string // link "" makes path a regular file
		want             string
	}{
		{"proc absolute symlink", "proc", hostTarget, "/proc in the rootfs is a symlink"},
		{"proc relative symlink", "proc", "../../.." + hostTarget, "/proc in the rootfs is a symlink"},
		{"proc symlink to a dir in the image", "proc", "/etc", "/proc in the rootfs is a symlink"},
		{"proc regular file", "proc", "", "/proc in the rootfs is a regular file"},
		{"sys absolute symlink", "sys", hostTarget, "/sys in the rootfs is a symlink"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			lower := newBusyboxRootfs(t)
			p := filepath.Join(lower, tt.path)
			var err error
			if tt.link != "" {
				err = os.Symlink(tt.link, p)
			} else {
				err = os.WriteFile(p, nil, 0o644)
			}
			if err != nil {
				t.Fatal(err)
			}
			s := newSandbox(t, lower)
			_, _, err = run(t, s.spec("sh", "-c", "test -w /proc/sys/kernel/core_pattern && echo WRITABLE"))
			var se *executor.SetupError
			if !errors.As(err, &se) || !strings.Contains(err.Error(), tt.want) || !strings.Contains(err.Error(), "must be a plain directory") {
				t.Errorf("Run = %v, want a SetupError saying %q and that it must be a plain directory", err, tt.want)
			}
			if _, err := os.Lstat(hostTarget); !errors.Is(err, os.ErrNotExist) {
				os.Remove(hostTarget)
				t.Errorf("the sandbox created %s on the host (Lstat: %v)", hostTarget, err)
			}
			if _, err := os.Lstat(filepath.Join(s.upper, strings.TrimPrefix(hostTarget, "/"))); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("the sandbox created %s in the layer (Lstat: %v)", hostTarget, err)
			}
		})
	}
}

// TestMaskedAndReadonlyProc: the masks hold and /proc/sys cannot be
// written (a core_pattern "|handler" would run as host root).
func TestMaskedAndReadonlyProc(t *testing.T) {
	s := newSandbox(t, newBusyboxRootfs(t))
	var masked []string
	for _, f := range []string{"/proc/keys", "/proc/timer_list", "/proc/kcore", "/proc/sched_debug"} {
		if _, err := os.Stat(f); err == nil {
			masked = append(masked, f)
		}
	}
	if len(masked) < 2 {
		t.Fatalf("this kernel has only %q of /proc/keys, /proc/timer_list, ...: nothing to test", masked)
	}
	script := `for f in ` + strings.Join(masked, " ") + `; do echo "$f $(cat $f | wc -c)"; done
echo '|/bin/true' 2>&1 > /proc/sys/kernel/core_pattern
echo 1 2>&1 > /proc/sys/vm/drop_caches`
	out, _, err := run(t, s.spec("sh", "-c", script))
	if err == nil {
		t.Errorf("writing /proc/sys succeeded")
	}
	for _, f := range masked {
		if !strings.Contains(out, f+" 0\n") {
			t.Errorf("%s is not masked (empty): %q", f, out)
		}
	}
	// (busybox's test -w is true for root whatever the mount: it does
	// not call access(2). So the test writes.)
	if strings.Count(out, "Read-only file system") != 2 {
		t.Errorf("writes to /proc/sys/kernel/core_pattern and /proc/sys/vm/drop_caches: %q, want EROFS twice", out)
	}
}

// TestDeviceNodesCannotBeOpened: a node made with mknod (CAP_MKNOD stays,
// for dpkg and tar) cannot be opened on the rootfs nor on any writable
// mount: /dev, /dev/shm, a tmpfs, a bind mount. As rootless root the
// kernel refuses mknod itself.
func TestDeviceNodesCannotBeOpened(t *testing.T) {
	s := newSandbox(t, newBusyboxRootfs(t))
	script := `for d in /tmp /dev /dev/shm /tmpfs /bind; do
  for n in "c 1 3" "b 7 0" "c 5 1"; do
    rm -f $d/z
    if ! mknod $d/z $n 2>/tmp/err; then echo "$d mknod: $(cat /tmp/err)"; continue; fi
    if dd if=$d/z of=/dev/null bs=1 count=0 2>/tmp/err; then echo "$d $n OPENED"; else echo "$d open: $(cat /tmp/err)"; fi
  done
done` // count=0: open only (reading a console would block)
	spec := s.spec("sh", "-c", script)
	spec.Mounts = []executor.BindMount{{Source: t.TempDir(), Target: "/bind"}}
	spec.RunMounts = []executor.Mount{{Type: executor.MountTmpfs, Target: "/tmpfs"}}
	out := mustRun(t, spec)
	lines := strings.Split(out, "\n")
	if len(lines) != 15 {
		t.Fatalf("got %d lines, want 15: %q", len(lines), out)
	}
	for _, l := range lines {
		switch {
		case strings.Contains(l, " open: ") && strings.HasSuffix(l, "Permission denied"):
			// EACCES: the mount is nodev.
		case userns.Rootless() && strings.Contains(l, " mknod: ") && strings.HasSuffix(l, "Operation not permitted"):
			// EPERM: no mknod in a user namespace.
		default:
			t.Errorf("%s: want open to fail with EACCES (or rootless, mknod with EPERM)", l)
		}
	}
}

// TestLayerDeviceNodeCannotBeOpened: a device node carried in an image
// layer (or an ADD archive, which becomes one) cannot be opened.
func TestLayerDeviceNodeCannotBeOpened(t *testing.T) {
	lower := newBusyboxRootfs(t)
	if err := unix.Mknod(filepath.Join(lower, "null"), unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3))); err != nil {
		t.Skipf("cannot make a device node for the layer here: %v", err)
	}
	s := newSandbox(t, lower)
	_, errOut, err := run(t, s.spec("sh", "-c", "echo x > /null"))
	if err == nil || !strings.Contains(errOut, "Permission denied") {
		t.Errorf("writing the layer's device node: err %v, stderr %q, want EACCES", err, errOut)
	}
}

// TestOnlyStandardDevices: /dev holds the standard nodes and nothing of
// the host's (console, ttys, disks).
func TestOnlyStandardDevices(t *testing.T) {
	s := newSandbox(t, newBusyboxRootfs(t))
	got := mustRun(t, s.spec("sh", "-c", "ls /dev; for f in /dev/console /dev/tty1 /dev/mem /dev/loop0; do test -e $f && echo $f; done; true"))
	want := "fd\nfull\nnull\nptmx\npts\nrandom\nshm\nstderr\nstdin\nstdout\ntty\nurandom\nzero"
	if got != want {
		t.Errorf("/dev = %q, want %q", got, want)
	}
	// The standard nodes work.
	script := `echo x > /dev/null && head -c 3 /dev/zero | wc -c && head -c 3 /dev/urandom | wc -c && head -c 3 /dev/random | wc -c
echo x 2>&1 > /dev/full
exec 3<>/dev/ptmx && echo ptmx
echo shm > /dev/shm/x && cat /dev/shm/x`
	want = "3\n3\n3\nsh: write error: No space left on device\nptmx\nshm"
	if got := mustRun(t, s.spec("sh", "-c", script)); got != want {
		t.Errorf("standard nodes: %q, want %q", got, want)
	}
}

// TestHostProcessesUnreachable: in its pid namespace the sandbox cannot
// name a host process, so it cannot signal or ptrace one (both look the
// pid up the same way: ESRCH), nor reach the host's root through
// /proc/PID/root; its /proc/1/root is its own root.
func TestHostProcessesUnreachable(t *testing.T) {
	s := newSandbox(t, newBusyboxRootfs(t))
	marker := filepath.Join(t.TempDir(), "host-marker")
	if err := os.WriteFile(marker, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	pid := strconv.Itoa(os.Getpid())
	script := `kill -0 ` + pid + ` 2>&1
test -e /proc/` + pid + `/root && echo "host pid visible"
test -e /proc/1/root` + marker + ` && echo "host root reachable"
readlink /proc/1/root`
	out, _, _ := run(t, s.spec("sh", "-c", script))
	if want := "sh: can't kill pid " + pid + ": No such process\n/\n"; out != want {
		t.Errorf("got %q, want %q", out, want)
	}
}

// TestSysReadOnlyAndMountDenied: /sys cannot be written (EROFS) and the
// process cannot mount (EPERM: no CAP_SYS_ADMIN).
func TestSysReadOnlyAndMountDenied(t *testing.T) {
	s := newSandbox(t, newBusyboxRootfs(t))
	script := `touch /sys/x 2>&1
echo 1 2>&1 > /sys/kernel/uevent_helper
mount -t tmpfs t /tmp 2>&1
mount -o bind /proc /tmp 2>&1
true`
	out := mustRun(t, s.spec("sh", "-c", script))
	lines := strings.Split(out, "\n")
	if len(lines) != 4 {
		t.Fatalf("got %q, want 4 errors", out)
	}
	for _, l := range lines[:2] {
		if !strings.HasSuffix(l, "Read-only file system") {
			t.Errorf("write to /sys: %q, want EROFS", l)
		}
	}
	for _, l := range lines[2:] {
		// busybox says this for EPERM and EACCES.
		if !strings.Contains(l, "permission denied") {
			t.Errorf("mount: %q, want EPERM", l)
		}
	}
}
