package rootfs

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	snapmount "github.com/builder-dev/builder/snapshot/mount"
	"golang.org/x/sys/unix"
)

// Docker's masked and read-only /proc and /sys paths (moby's
// oci/defaults.go). A path this kernel does not have is not there to hide;
// any other failure to mask fails the step.
var (
	maskedPaths = []string{
		"/proc/asound",
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
		"/proc/bus",
		"/proc/fs",
		"/proc/irq",
		"/proc/sys",
		"/proc/sysrq-trigger",
	}
)

// devNodes are bind-mounted from the host's /dev into the sandbox's; they
// are the only device nodes a sandbox can open (with /dev/pts/*): the
// rootfs and every other writable mount are nodev.
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

// Root builds a sandbox's root filesystem, before pivot_root.
type Root struct {
	dir      string   // the rootfs mountpoint
	stateDir string   // holds hosts and resolv.conf
	shmSize  int64    // of /dev/shm; 0 is the default
	stubs    []string // mountpoints created in dir, relative to it, in creation order
	insecure bool     // no masked or read-only /proc and /sys paths, no nodev
	rootFD   *os.File // O_PATH handle on the mounted rootfs, see openRoot
	secrets  string   // the secrets tmpfs, once mounted
}

// New is the root filesystem to be mounted at dir, with the files /etc/hosts
// and /etc/resolv.conf are bound from in stateDir; insecure (RUN
// --security=insecure) leaves /proc and /sys unmasked and devices usable.
func New(dir, stateDir string, insecure bool, shmSize int64) *Root {
	return &Root{dir: dir, stateDir: stateDir, insecure: insecure, shmSize: shmSize}
}

// Stubs are the mountpoints r created in the rootfs so far, relative to
// its root, in creation order: the parent removes them from the overlay
// upper directory afterwards.
func (r *Root) Stubs() []string { return r.stubs }

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

// Mount mounts the layers at dir and makes the whole rootfs nodev: a
// device node carried in a layer, an ADD archive or made by mknod in a
// step can be created (CAP_MKNOD stays, for dpkg and tar) but not opened.
// setuid binaries keep working, as in Docker. An insecure sandbox keeps
// its devices (losetup for disk images): it could remount anyway.
func (r *Root) Mount(layers []snapmount.Mount) error {
	if err := snapmount.All(layers, r.dir); err != nil {
		return err
	}
	if err := r.openRoot(); err != nil {
		return err
	}
	if r.insecure {
		return nil
	}
	root := &handle{fd: int(r.rootFD.Fd())}
	return setMountAttr(root, unix.MOUNT_ATTR_NODEV, true)
}

// nodev is MS_NODEV, except in an insecure sandbox.
func (r *Root) nodev() uintptr {
	if r.insecure {
		return 0
	}
	return unix.MS_NODEV
}

// Setup mounts everything below the rootfs: /proc, /dev, /sys, /etc/hosts,
// /etc/resolv.conf and the masks.
func (r *Root) Setup() error {
	// runc refuses to mount proc or sysfs anywhere but on a plain
	// directory (CVE-2019-16884, CVE-2019-19921), and so BuildKit and
	// Docker builds fail on such an image; so does this. Replacing the
	// symlink instead would change the image's tree behind its back.
	if err := r.mountPlain("/proc", "proc", "proc", procFlags, ""); err != nil {
		return stepError("mounting /proc in rootfs", err)
	}
	if err := r.setupDev(); err != nil {
		return stepError("setting up /dev in rootfs", err)
	}
	if err := r.setupSys(); err != nil {
		return stepError("mounting /sys in rootfs", err)
	}
	for _, f := range []string{"hosts", "resolv.conf"} {
		err := r.bindOne(filepath.Join(r.stateDir, f), "/etc/"+f, false, false)
		if err != nil {
			return stepError("mounting /etc/"+f+" in rootfs", err)
		}
	}
	if r.insecure {
		return nil
	}
	if err := r.mask(); err != nil {
		return stepError("masking /proc and /sys paths", err)
	}
	return nil
}

// mountPlain mounts a filesystem at p, which must be a plain directory
// (or missing, then it is created): no symlink anywhere on the path.
func (r *Root) mountPlain(p, source, fstype string, flags uintptr, data string) error {
	h, err := r.mountpoint(p, noSymlinks, true)
	if err != nil {
		return fmt.Errorf("%w (%s must be a plain directory in the image, as runc requires)", err, p)
	}
	defer h.Close()
	return mountOn(source, h, fstype, flags, data)
}

// Bind mounts each of mounts at its target inside the rootfs.
func (r *Root) Bind(mounts []BindMount) error {
	for _, m := range mounts {
		fi, err := os.Stat(m.Source)
		if err == nil {
			err = r.bindOne(m.Source, m.Target, fi.IsDir(), m.Readonly)
		}
		if err != nil {
			return stepError("mounting "+m.Source+" at "+m.Target, err)
		}
	}
	return nil
}

// bindOne binds the host path source at target (resolved in the rootfs),
// nodev, and read-only and nosuid with readonly.
func (r *Root) bindOne(source, target string, dir, readonly bool) error {
	h, err := r.mountpoint(target, followInRoot, dir)
	if err != nil {
		return err
	}
	defer h.Close()
	if err := mountOn(source, h, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return err
	}
	top, err := r.reopen(h)
	if err != nil {
		return err
	}
	defer top.Close()
	var attr uint64
	if r.nodev() != 0 {
		attr |= unix.MOUNT_ATTR_NODEV
	}
	if readonly {
		attr |= unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV
	}
	if attr == 0 {
		return nil
	}
	return setMountAttr(top, attr, true)
}

// setupDev mounts a nodev tmpfs at /dev and binds the standard nodes into
// it from the host (a bind mount keeps the host mount's dev flag).
func (r *Root) setupDev() error {
	h, err := r.mountpoint("/dev", followInRoot, true)
	if err != nil {
		return err
	}
	defer h.Close()
	if err := mountOn("tmpfs", h, "tmpfs", unix.MS_NOSUID|r.nodev()|unix.MS_STRICTATIME, "mode=755,size=65536k"); err != nil {
		return err
	}
	devh, err := r.reopen(h)
	if err != nil {
		return err
	}
	defer devh.Close()
	// A fresh tmpfs that nothing else can see yet: paths below its
	// handle hold no symlink we did not make.
	dev := devh.proc()
	for _, n := range devNodes {
		host := "/dev/" + n
		if _, err := os.Stat(host); err != nil {
			continue // e.g. no /dev/tty on this host
		}
		target := filepath.Join(dev, n)
		fd, err := unix.Open(target, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC|unix.O_NOFOLLOW, 0o666)
		if err != nil {
			return &os.PathError{Op: "create", Path: "/dev/" + n, Err: err}
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
	// devpts keeps dev (its nodes are the ptys) and has no mknod.
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
	size := int64(64 << 20)
	if r.shmSize > 0 {
		size = r.shmSize
	}
	if err := mount("shm", shm, "tmpfs", procFlags, "mode=1777,size="+strconv.FormatInt(size, 10)); err != nil {
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
func (r *Root) setupSys() error {
	h, err := r.mountpoint("/sys", noSymlinks, true)
	if err != nil {
		return fmt.Errorf("%w (/sys must be a plain directory in the image, as runc requires)", err)
	}
	defer h.Close()
	err = mountOn("sysfs", h, "sysfs", procFlags|unix.MS_RDONLY, "")
	if err == nil || !(errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES)) {
		return err
	}
	if err := mountOn("/sys", h, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return err
	}
	top, err := r.reopen(h)
	if err != nil {
		return err
	}
	defer top.Close()
	return setMountAttr(top, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC, true)
}

// mask hides maskedPaths (an empty read-only tmpfs over directories,
// /dev/null over files) and makes readonlyPaths read-only. Each path is
// opened with no symlink on the way and must be on the proc or sysfs
// mounted above; one that is missing on this kernel is skipped, any other
// failure fails the step.
func (r *Root) mask() error {
	for _, p := range maskedPaths {
		h, err := r.maskTarget(p)
		if h == nil {
			if err != nil {
				return err
			}
			continue
		}
		mode, err := h.fileMode()
		switch {
		case err != nil:
		case mode&unix.S_IFMT == unix.S_IFDIR:
			err = mountOn("tmpfs", h, "tmpfs", unix.MS_RDONLY|procFlags, "")
		default:
			err = mountOn("/dev/null", h, "", unix.MS_BIND, "")
		}
		h.Close()
		if err != nil {
			return err
		}
	}
	for _, p := range readonlyPaths {
		h, err := r.maskTarget(p)
		if h == nil {
			if err != nil {
				return err
			}
			continue
		}
		err = mountOn(h.proc(), h, "", unix.MS_BIND|unix.MS_REC, "")
		if err == nil {
			var top *handle
			if top, err = r.reopen(h); err == nil {
				err = setMountAttr(top, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC, true)
				top.Close()
			}
		}
		h.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// maskTarget opens p for a mask: nil, nil when this kernel has no p.
func (r *Root) maskTarget(p string) (*handle, error) {
	h, err := r.open(p, noSymlinks, false, false)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var st unix.Statfs_t
	mode, merr := h.fileMode()
	switch {
	case unix.Fstatfs(h.fd, &st) != nil || merr != nil:
		err = fmt.Errorf("cannot stat %s", p)
	case st.Type != unix.PROC_SUPER_MAGIC && st.Type != unix.SYSFS_MAGIC:
		err = fmt.Errorf("%s is not on the sandbox's proc or sysfs (filesystem magic %#x): refusing to run unmasked", p, st.Type)
	case mode&unix.S_IFMT == unix.S_IFLNK:
		err = fmt.Errorf("%s is a symlink: refusing to mask through it", p)
	}
	if err != nil {
		h.Close()
		return nil, err
	}
	return h, nil
}

// MkdirCwd creates the working directory cwd (0755, owned by root) inside
// the rootfs if missing. Symlinks in the image resolve inside the rootfs.
func (r *Root) MkdirCwd(cwd string) error {
	// Unlike mountpoints, the directories stay in the layer, as in
	// Docker: they are not recorded as stubs.
	n := len(r.stubs)
	h, err := r.open(cwd, followInRoot, true, true)
	r.stubs = r.stubs[:n]
	if err != nil {
		return err
	}
	defer h.Close()
	return h.check(cwd, true)
}

// OpenInRoot opens the rootfs file p for reading, resolving symlinks
// inside the rootfs; it returns nil, nil when p does not exist.
func (r *Root) OpenInRoot(p string) (*os.File, error) {
	n := len(r.stubs)
	h, err := r.open(p, followInRoot, false, false)
	r.stubs = r.stubs[:n]
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer h.Close()
	var st unix.Stat_t
	if err := unix.Fstat(h.fd, &st); err != nil {
		return nil, os.NewSyscallError("fstat "+p, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		// A fifo would block the init forever.
		return nil, fmt.Errorf("%s in the rootfs is %s, not a regular file", p, fileKind(st.Mode))
	}
	// This process's /proc is still the host's, which is trusted.
	return os.OpenFile(h.proc(), os.O_RDONLY|unix.O_NOCTTY, 0)
}

// Pivot makes the rootfs the root of this mount namespace and detaches
// the old root.
func (r *Root) Pivot() error {
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
