package rootfs

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func newTestRootfs(t *testing.T) *Root {
	t.Helper()
	r := &Root{dir: t.TempDir()}
	if err := r.openRoot(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.rootFD.Close() })
	return r
}

// TestMountpointStaysInRoot: symlinks in the image resolve inside the
// rootfs, and what is created there is recorded.
func TestMountpointStaysInRoot(t *testing.T) {
	r := newTestRootfs(t)
	outside := t.TempDir()
	if err := os.Symlink(outside, filepath.Join(r.dir, "etc")); err != nil {
		t.Fatal(err)
	}
	h, err := r.mountpoint("/etc/hosts", followInRoot, false)
	if err != nil {
		t.Fatal(err)
	}
	h.Close()
	inRoot := strings.TrimPrefix(outside, "/")
	if h.rel != inRoot+"/hosts" {
		t.Errorf("resolved to %q, want %q", h.rel, inRoot+"/hosts")
	}
	if _, err := os.Stat(filepath.Join(outside, "hosts")); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("mountpoint created outside the rootfs (Stat: %v)", err)
	}
	if fi, err := os.Lstat(filepath.Join(r.dir, inRoot, "hosts")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("mountpoint not created as a file inside the rootfs: %v", err)
	}
	if len(r.stubs) == 0 || r.stubs[len(r.stubs)-1] != inRoot+"/hosts" {
		t.Errorf("stubs = %q, want them to end with %q", r.stubs, inRoot+"/hosts")
	}
}

// TestNoSymlinksRefused: /proc, /sys and the masks are opened with no
// symlink on the way, whatever it points at.
func TestNoSymlinksRefused(t *testing.T) {
	r := newTestRootfs(t)
	os.Mkdir(filepath.Join(r.dir, "p"), 0o755)
	os.Symlink("/p", filepath.Join(r.dir, "proc"))
	os.Mkdir(filepath.Join(r.dir, "sys"), 0o755)
	os.Symlink("/p", filepath.Join(r.dir, "sys", "firmware"))
	if _, err := r.mountpoint("/proc", noSymlinks, true); err == nil || !strings.Contains(err.Error(), "/proc in the rootfs is a symlink") {
		t.Errorf("mountpoint(/proc) = %v, want a symlink error", err)
	}
	if _, err := r.maskTarget("/proc/keys"); err == nil || !strings.Contains(err.Error(), "/proc in the rootfs is a symlink") {
		t.Errorf("maskTarget(/proc/keys) = %v, want a symlink error", err)
	}
	h, err := r.maskTarget("/sys/firmware")
	if err == nil || !strings.Contains(err.Error(), "not on the sandbox's proc or sysfs") {
		t.Errorf("maskTarget(/sys/firmware) = %v, %v, want a refusal", h, err)
	}
	if !slices.Equal(r.stubs, nil) {
		t.Errorf("stubs = %q, want none", r.stubs)
	}
}

// TestMaskOffProcRefused: a mask whose path is not on proc or sysfs (the
// image's own file, say, with nothing mounted over it) fails; one that
// does not exist is skipped.
func TestMaskOffProcRefused(t *testing.T) {
	r := newTestRootfs(t)
	os.MkdirAll(filepath.Join(r.dir, "proc"), 0o755)
	os.WriteFile(filepath.Join(r.dir, "proc", "keys"), nil, 0o644)
	if _, err := r.maskTarget("/proc/keys"); err == nil || !strings.Contains(err.Error(), "refusing to run unmasked") {
		t.Errorf("maskTarget on a plain file = %v, want a refusal", err)
	}
	if h, err := r.maskTarget("/proc/timer_list"); h != nil || err != nil {
		t.Errorf("maskTarget of a missing path = %v, %v, want nil, nil", h, err)
	}
}

// TestOpenInRoot: /etc/passwd is read through symlinks resolved in the
// rootfs, and a fifo there is an error, not a hang.
func TestOpenInRoot(t *testing.T) {
	r := newTestRootfs(t)
	os.MkdirAll(filepath.Join(r.dir, "etc"), 0o755)
	os.MkdirAll(filepath.Join(r.dir, "other"), 0o755)
	os.WriteFile(filepath.Join(r.dir, "other", "passwd"), []byte("in root\n"), 0o644)
	os.Symlink("/../../other/passwd", filepath.Join(r.dir, "etc", "passwd"))
	f, err := r.OpenInRoot("/etc/passwd")
	if err != nil || f == nil {
		t.Fatalf("openInRoot = %v, %v", f, err)
	}
	b, _ := io.ReadAll(f)
	f.Close()
	if string(b) != "in root\n" {
		t.Errorf("read %q, want the rootfs's /other/passwd", b)
	}
	if f, err := r.OpenInRoot("/etc/group"); f != nil || err != nil {
		t.Errorf("openInRoot of a missing file = %v, %v, want nil, nil", f, err)
	}
	if err := unix.Mkfifo(filepath.Join(r.dir, "etc", "group"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := r.OpenInRoot("/etc/group"); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("openInRoot of a fifo = %v, want an error", err)
	}
	if len(r.stubs) != 0 {
		t.Errorf("stubs = %q, want none", r.stubs)
	}
}
