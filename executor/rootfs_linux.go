package executor

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
)

// Docker's masked and read-only /proc and /sys paths (moby's
// oci/defaults.go). Paths that do not exist on this kernel are skipped.
var (
	maskedPaths = []string{
		"/proc/acpi",
		"/proc/interrupts",
		"/proc/kcore",
		"/proc/keys",
		"/proc/latency_stats",
		"/proc/timer_list",
		"/proc/timer_stats",
		"/proc/sched_debug",
		"/proc/scsi",
		"/sys/firmware",
		"/sys/devices/virtual/powercap",
	}
	readonlyPaths = []string{
		"/proc/asound",
		"/proc/bus",
		"/proc/fs",
		"/proc/irq",
		"/proc/sys",
		"/proc/sysrq-trigger",
	}
)

// devNodes are bind-mounted from the host's /dev into the sandbox's.
var devNodes = []string{"null", "zero", "full", "random", "urandom", "tty"}

// devLinks are symlinks created in the sandbox's /dev.
var devLinks = [][2]string{
	{"/proc/self/fd", "fd"},
	{"/proc/self/fd/0", "stdin"},
	{"/proc/self/fd/1", "stdout"},
	{"/proc/self/fd/2", "stderr"},
	{"pts/ptmx", "ptmx"},
}

const procFlags = unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC

// rootfs builds a sandbox's root filesystem, before pivot_root.
type rootfs struct {
	dir      string   // the rootfs mountpoint
	stateDir string   // holds hosts and resolv.conf
	stubs    []string // mountpoints created in dir, relative to it, in creation order
	insecure bool     // no masked or read-only /proc and /sys paths
}

// stepError names the setup step that failed.
func stepError(step string, err error) error {
	return fmt.Errorf("%s: %w", step, err)
}

func mount(source, target, fstype string, flags uintptr, data string) error {
	if err := unix.Mount(source, target, fstype, flags, data); err != nil {
		return &os.PathError{Op: fmt.Sprintf("mount %s (type %s, flags %#x, data %q)", source, fstype, flags, data), Path: target, Err: err}
	}
	return nil
}

// mountpoint returns the host path of the rootfs path p, resolving
// symlinks inside the rootfs, and creates it (a directory, or an empty
// file) if missing, recording what it created as stubs.
func (r *rootfs) mountpoint(p string, dir bool) (string, error) {
	full, err := securejoin.SecureJoin(r.dir, p)
	if err != nil {
		return "", err
	}
	if _, err := os.Lstat(full); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return full, err
	}
	// Create missing parents one by one, so each is recorded.
	rel, err := filepath.Rel(r.dir, full)
	if err != nil {
		return "", err
	}
	parts := strings.Split(rel, string(filepath.Separator))
	cur := r.dir
	for i, part := range parts {
		cur = filepath.Join(cur, part)
		last := i == len(parts)-1
		if !last || dir {
			err = unix.Mkdir(cur, 0o755)
		} else {
			var fd int
			fd, err = unix.Open(cur, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o644)
			if err == nil {
				unix.Close(fd)
			}
		}
		switch {
		case err == unix.EEXIST && !last:
			continue
		case err != nil:
			return "", &os.PathError{Op: "create", Path: cur, Err: err}
		}
		r.stubs = append(r.stubs, filepath.Join(parts[:i+1]...))
	}
	return full, nil
}

// setup mounts everything below the rootfs: /proc, /dev, /sys, /etc/hosts,
// /etc/resolv.conf and the masks.
func (r *rootfs) setup() error {
	proc, err := r.mountpoint("/proc", true)
	if err == nil {
		err = mount("proc", proc, "proc", procFlags, "")
	}
	if err != nil {
		return stepError("mounting /proc in rootfs", err)
	}
	if err := r.setupDev(); err != nil {
		return stepError("setting up /dev in rootfs", err)
	}
	if err := r.setupSys(); err != nil {
		return stepError("mounting /sys in rootfs", err)
	}
	for _, f := range []string{"hosts", "resolv.conf"} {
		target, err := r.mountpoint("/etc/"+f, false)
		if err == nil {
			err = mount(filepath.Join(r.stateDir, f), target, "", unix.MS_BIND, "")
		}
		if err != nil {
			return stepError("mounting /etc/"+f+" in rootfs", err)
		}
	}
	if r.insecure {
		return nil
	}
	if err := r.mask(); err != nil {
		return stepError("masking /proc paths", err)
	}
	return nil
}

// bind mounts each of mounts at its target inside the rootfs.
func (r *rootfs) bind(mounts []BindMount) error {
	for _, m := range mounts {
		fi, err := os.Stat(m.Source)
		if err != nil {
			return stepError("mounting "+m.Target, err)
		}
		target, err := r.mountpoint(m.Target, fi.IsDir())
		if err == nil {
			err = mount(m.Source, target, "", unix.MS_BIND|unix.MS_REC, "")
		}
		if err == nil && m.Readonly {
			err = mount("", target, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, "")
		}
		if err != nil {
			return stepError("mounting "+m.Source+" at "+m.Target, err)
		}
	}
	return nil
}

func (r *rootfs) setupDev() error {
	dev, err := r.mountpoint("/dev", true)
	if err != nil {
		return err
	}
	if err := mount("tmpfs", dev, "tmpfs", unix.MS_NOSUID|unix.MS_STRICTATIME, "mode=755,size=65536k"); err != nil {
		return err
	}
	for _, n := range devNodes {
		host := "/dev/" + n
		if _, err := os.Stat(host); err != nil {
			continue // e.g. no /dev/tty on this host
		}
		target := filepath.Join(dev, n)
		fd, err := unix.Open(target, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC, 0o666)
		if err != nil {
			return &os.PathError{Op: "create", Path: target, Err: err}
		}
		unix.Close(fd)
		if err := mount(host, target, "", unix.MS_BIND, ""); err != nil {
			return err
		}
	}
	pts := filepath.Join(dev, "pts")
	if err := os.Mkdir(pts, 0o755); err != nil {
		return err
	}
	const ptsOpts = "newinstance,ptmxmode=0666,mode=0620"
	if err := mount("devpts", pts, "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, ptsOpts+",gid=5"); err != nil {
		// gid 5 (tty) may be unmapped in a user namespace.
		if err := mount("devpts", pts, "devpts", unix.MS_NOSUID|unix.MS_NOEXEC, ptsOpts); err != nil {
			return err
		}
	}
	shm := filepath.Join(dev, "shm")
	if err := os.Mkdir(shm, 0o755); err != nil {
		return err
	}
	if err := mount("shm", shm, "tmpfs", procFlags, "mode=1777,size=65536k"); err != nil {
		return err
	}
	for _, l := range devLinks {
		if err := os.Symlink(l[0], filepath.Join(dev, l[1])); err != nil {
			return err
		}
	}
	return nil
}

// setupSys mounts a read-only sysfs, or, where sysfs cannot be mounted
// (a user namespace that does not own the network namespace), a read-only
// recursive bind of the host's /sys.
func (r *rootfs) setupSys() error {
	sys, err := r.mountpoint("/sys", true)
	if err != nil {
		return err
	}
	err = mount("sysfs", sys, "sysfs", procFlags|unix.MS_RDONLY, "")
	if err == nil || !(errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES)) {
		return err
	}
	if err := mount("/sys", sys, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return err
	}
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC}
	if err := unix.MountSetattr(-1, sys, unix.AT_RECURSIVE, &attr); err != nil {
		// Before Linux 5.12 only the top mount can be made read-only.
		return mount("", sys, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|procFlags, "")
	}
	return nil
}

// mask hides maskedPaths (an empty read-only tmpfs over directories,
// /dev/null over files) and makes readonlyPaths read-only.
func (r *rootfs) mask() error {
	for _, p := range maskedPaths {
		target := filepath.Join(r.dir, p)
		fi, err := os.Lstat(target)
		if err != nil {
			continue
		}
		if fi.IsDir() {
			err = mount("tmpfs", target, "tmpfs", unix.MS_RDONLY|procFlags, "")
		} else {
			err = mount("/dev/null", target, "", unix.MS_BIND, "")
		}
		if err != nil {
			return err
		}
	}
	for _, p := range readonlyPaths {
		target := filepath.Join(r.dir, p)
		if _, err := os.Lstat(target); err != nil {
			continue
		}
		if err := mount(target, target, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
			return err
		}
		if err := mount("", target, "", unix.MS_REMOUNT|unix.MS_BIND|unix.MS_RDONLY|procFlags, ""); err != nil {
			return err
		}
	}
	return nil
}

// mkdirCwd creates the working directory cwd (0755, owned by root) inside
// the rootfs if missing. Symlinks in the image resolve inside the rootfs.
func (r *rootfs) mkdirCwd(cwd string) error {
	full, err := securejoin.SecureJoin(r.dir, cwd)
	if err != nil {
		return err
	}
	return os.MkdirAll(full, 0o755)
}

// openInRoot opens the rootfs file p, resolving symlinks inside the
// rootfs; it returns nil, nil when p does not exist.
func (r *rootfs) openInRoot(p string) (*os.File, error) {
	full, err := securejoin.SecureJoin(r.dir, p)
	if err != nil {
		return nil, err
	}
	f, err := os.Open(full)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	return f, err
}

// pivot makes the rootfs the root of this mount namespace and detaches
// the old root.
func (r *rootfs) pivot() error {
	if err := unix.Chdir(r.dir); err != nil {
		return &os.PathError{Op: "chdir", Path: r.dir, Err: err}
	}
	// Stack the old root on top of the new one, then detach it: no
	// directory for the old root is needed in the image.
	if err := unix.PivotRoot(".", "."); err != nil {
		return &os.SyscallError{Syscall: "pivot_root", Err: err}
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return &os.SyscallError{Syscall: "umount old root", Err: err}
	}
	return unix.Chdir("/")
}
