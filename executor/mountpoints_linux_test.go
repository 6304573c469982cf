package executor_test

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/builder-dev/builder/executor"
	"github.com/builder-dev/builder/executor/mountpoints"
)

// With the layer of mountpoints beneath the rootfs, a step leaves nothing
// in the upper dir that it did not write, and no step can change the layer
// that every later step mounts.
func TestMountpointLayer(t *testing.T) {
	dir := t.TempDir()
	mountpoints.Use(dir)
	defer mountpoints.Use(mountpointLayerDir)

	// An /etc without hosts or resolv.conf: no copy-up of /etc either.
	s := newSandbox(t, newBusyboxRootfs(t))
	mustRun(t, s.spec("sh", "-c", "test -d /proc/self && test -c /dev/null && test -s /etc/hosts"))
	if ents, _ := os.ReadDir(s.upper); len(ents) != 0 {
		t.Errorf("upper dir after a step that wrote nothing holds %v", ents)
	}

	// No /etc at all; the step writes beside the mountpoints and tries to
	// change them and the layer's directories.
	lower := newBusyboxRootfs(t)
	os.RemoveAll(filepath.Join(lower, "etc"))
	s = newSandbox(t, lower)
	attack := `echo keep > /etc/motd
echo evil >> /etc/hosts
umount /etc/resolv.conf 2>/dev/null; echo evil > /etc/resolv.conf
mknod /dev/zz b 7 0; mkdir /proc/x /sys/x 2>/dev/null
rm -rf /etc/resolv.conf 2>/dev/null
true`
	mustRun(t, s.spec("sh", "-c", attack))
	if b, err := os.ReadFile(filepath.Join(s.upper, "etc/motd")); err != nil || string(b) != "keep\n" {
		t.Errorf("upper etc/motd = %q, %v; want the step's write", b, err)
	}
	for _, p := range []string{"proc", "dev", "sys", "etc/hosts"} {
		if _, err := os.Lstat(filepath.Join(s.upper, p)); err == nil {
			t.Errorf("mountpoint %s reached the upper dir", p)
		}
	}
	var got []string
	filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			t.Error(err)
			return nil
		}
		rel, _ := filepath.Rel(dir, p)
		fi, _ := d.Info()
		if !d.IsDir() && fi.Size() != 0 {
			t.Errorf("layer file %s was written: %d bytes", rel, fi.Size())
		}
		got = append(got, rel)
		return nil
	})
	want := []string{".", "mountpoints-2", "mountpoints-2/dev", "mountpoints-2/etc", "mountpoints-2/etc/hosts", "mountpoints-2/etc/resolv.conf", "mountpoints-2/proc", "mountpoints-2/sys"}
	if !slices.Equal(got, want) {
		t.Errorf("layer of mountpoints after the steps = %v, want %v", got, want)
	}
}

// A mount beneath /etc of an image without /etc leaves no etc/ in the
// upper dir (overlay copies the layer's etc/ up when the init makes the
// mountpoint's parents), as it did before the layer; a step's own change
// to /etc stays.
func TestMountpointLayerParentsRemoved(t *testing.T) {
	lower := newBusyboxRootfs(t)
	os.RemoveAll(filepath.Join(lower, "etc"))
	s := newSandbox(t, lower)
	spec := s.spec("sh", "-c", "test -d /etc/ssl/certs")
	spec.RunMounts = []executor.Mount{{Type: executor.MountTmpfs, Target: "/etc/ssl/certs", Size: 1 << 20}}
	mustRun(t, spec)
	if ents, _ := os.ReadDir(s.upper); len(ents) != 0 {
		t.Errorf("upper dir after a step with a mount beneath /etc holds %v", ents)
	}

	s = newSandbox(t, lower)
	spec = s.spec("sh", "-c", "busybox chmod 700 /etc")
	spec.RunMounts = []executor.Mount{{Type: executor.MountTmpfs, Target: "/etc/ssl/certs", Size: 1 << 20}}
	mustRun(t, spec)
	if fi, err := os.Stat(filepath.Join(s.upper, "etc")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("upper etc after chmod 700 /etc: %v, %v; want the step's 0700", fi, err)
	}
}
