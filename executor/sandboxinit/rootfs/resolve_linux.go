package rootfs

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
)

// Every mount target in the rootfs is opened here, component by component
// from a handle on the rootfs's root, with O_NOFOLLOW, and the mount goes
// onto the opened handle through /proc/self/fd/N, as runc does. A symlink
// in the image (even one planted between resolving and mounting) can then
// never send a mount, or a mask, to a path outside the rootfs or beside
// the directory that was checked.

// resolveMode says how a mountpoint's path is resolved.
type resolveMode int

const (
	// followInRoot resolves symlinks in the image as the sandbox would
	// see them (absolute links and ".." stay inside the rootfs), then
	// opens the resolved path: /etc/resolv.conf -> ../run/resolv.conf in
	// an image mounts at /run/resolv.conf.
	followInRoot resolveMode = iota
	// noSymlinks refuses any symlink on the path: /proc, /sys and the
	// masks under them must be the plain directories they look like.
	noSymlinks
)

// handle is an O_PATH descriptor of a mountpoint inside the rootfs and
// the path it was reached by, relative to the rootfs root.
type handle struct {
	fd  int // closed by Close
	rel string
	// mode is the file's type and mode when it was opened, 0 if not
	// known (saves check an fstat).
	mode uint32
}

// proc is the magic-link path mount(2) and friends are given to act on
// exactly the opened file.
func (h *handle) proc() string { return "/proc/self/fd/" + strconv.Itoa(h.fd) }

func (h *handle) Close() error { return unix.Close(h.fd) }

// openRoot opens the rootfs's root; call it after the rootfs is mounted,
// so that the handle is on the rootfs mount and not the directory under it.
func (r *Root) openRoot() error {
	fd, err := unix.Open(r.dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: r.dir, Err: err}
	}
	r.rootFD = os.NewFile(uintptr(fd), r.dir)
	return nil
}

// resolve returns the rootfs-relative path p resolves to under mode, with
// no symlink left in it (noSymlinks: p itself, cleaned).
func (r *Root) resolve(p string, mode resolveMode) (string, error) {
	clean := filepath.Clean("/" + p)
	if mode == noSymlinks {
		return strings.TrimPrefix(clean, "/"), nil
	}
	full, err := securejoin.SecureJoin(r.dir, clean)
	if err != nil {
		return "", err
	}
	rel, err := filepath.Rel(r.dir, full)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("%s resolves outside the rootfs", p)
	}
	if rel == "." {
		rel = ""
	}
	return rel, nil
}

// open opens the rootfs path p (resolved under mode) as an O_PATH handle,
// walking it from the root one component at a time without following any
// symlink. With create, missing components are created (directories, and
// the last one a directory if dir, else an empty file) and recorded as
// stubs; without, a missing path is an error wrapping ENOENT.
//
// A path that exists and has no symlink on it resolves the same under
// either mode; openBeneath opens it in one openat2 call, and anything
// else (a missing component, a symlink, an old kernel) takes the walk.
func (r *Root) open(p string, mode resolveMode, create, dir bool) (*handle, error) {
	clean := strings.TrimPrefix(filepath.Clean("/"+p), "/")
	h, err := r.openBeneath(clean)
	switch {
	case h != nil:
		return h, nil
	case err == unix.ENOENT && !create:
		// openat2 met no symlink (that is ELOOP) before a missing
		// component, so following symlinks in the root would reach it
		// too: the walk would end the same way. (A mask on a path this
		// kernel lacks, an image without /etc/passwd.)
		return nil, &os.PathError{Op: "open", Path: "/" + clean, Err: err}
	}
	rel, err := r.resolve(p, mode)
	if err != nil {
		return nil, err
	}
	fd, err := unix.FcntlInt(r.rootFD.Fd(), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return nil, os.NewSyscallError("fcntl(F_DUPFD_CLOEXEC)", err)
	}
	var parts []string
	if rel != "" {
		parts = strings.Split(rel, "/")
	}
	for i := range parts {
		last := i == len(parts)-1
		next, err := r.step(fd, parts[:i+1], create, last && !dir)
		unix.Close(fd)
		if err != nil {
			return nil, err
		}
		fd = next
		if last {
			break
		}
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return nil, os.NewSyscallError("fstat", err)
		}
		if st.Mode&unix.S_IFMT != unix.S_IFDIR {
			unix.Close(fd)
			return nil, fmt.Errorf("/%s in the rootfs is %s, not a directory", strings.Join(parts[:i+1], "/"), fileKind(st.Mode))
		}
	}
	return &handle{fd: fd, rel: rel}, nil
}

// openBeneath opens rel below the rootfs's root with openat2, refusing
// every symlink on the way (RESOLVE_NO_SYMLINKS) and any step out of the
// root (RESOLVE_BENEATH); a trailing symlink is opened as itself
// (O_NOFOLLOW with O_PATH), as the walk would. It returns nil when that
// fails for any reason, or when the path ends in a symlink (which
// followInRoot must resolve): the walk then decides, with its errors.
// err is openat2's.
func (r *Root) openBeneath(rel string) (*handle, error) {
	name := rel
	if name == "" {
		name = "."
	}
	how := unix.OpenHow{
		Flags:   unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_BENEATH | unix.RESOLVE_NO_MAGICLINKS,
	}
	fd, err := unix.Openat2(int(r.rootFD.Fd()), name, &how)
	if err != nil {
		return nil, err
	}
	var st unix.Stat_t
	if unix.Fstat(fd, &st) != nil || st.Mode&unix.S_IFMT == unix.S_IFLNK {
		unix.Close(fd)
		return nil, nil
	}
	return &handle{fd: fd, rel: rel, mode: st.Mode}, nil
}

// step opens the last of parts below the directory dirfd, creating it
// first if asked and missing. A symlink is opened as itself (O_NOFOLLOW),
// and open's caller or the mount on it then fails: nothing follows it.
func (r *Root) step(dirfd int, parts []string, create, file bool) (int, error) {
	name := parts[len(parts)-1]
	rel := strings.Join(parts, "/")
	const flags = unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC
	fd, err := unix.Openat(dirfd, name, flags, 0)
	if err == nil || err != unix.ENOENT || !create {
		if err != nil {
			return -1, &os.PathError{Op: "open", Path: "/" + rel, Err: err}
		}
		return fd, nil
	}
	if file {
		var cfd int
		cfd, err = unix.Openat(dirfd, name, unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
		if err == nil {
			unix.Close(cfd)
		}
	} else {
		err = unix.Mkdirat(dirfd, name, 0o755)
	}
	if err != nil {
		return -1, &os.PathError{Op: "create", Path: "/" + rel, Err: err}
	}
	r.stubs = append(r.stubs, rel)
	fd, err = unix.Openat(dirfd, name, flags, 0)
	if err != nil {
		return -1, &os.PathError{Op: "open", Path: "/" + rel, Err: err}
	}
	return fd, nil
}

// mountpoint opens the rootfs path p for a mount, creating it (a
// directory, or an empty file) if missing, and checks that it is a
// directory or a non-directory as dir says: a mount never lands on a
// symlink.
func (r *Root) mountpoint(p string, mode resolveMode, dir bool) (*handle, error) {
	h, err := r.open(p, mode, true, dir)
	if err != nil {
		return nil, err
	}
	if err := h.check(p, dir); err != nil {
		h.Close()
		return nil, err
	}
	return h, nil
}

// check says why h cannot take a mount of a directory (dir) or a file.
func (h *handle) check(p string, dir bool) error {
	mode, err := h.fileMode()
	if err != nil {
		return err
	}
	switch kind := mode & unix.S_IFMT; {
	case kind == unix.S_IFLNK:
		return fmt.Errorf("%s in the rootfs is a symlink: refusing to mount through it", p)
	case dir && kind != unix.S_IFDIR:
		return fmt.Errorf("%s in the rootfs is %s, not a directory", p, fileKind(mode))
	case !dir && kind == unix.S_IFDIR:
		return fmt.Errorf("%s in the rootfs is a directory, and a file is mounted there", p)
	}
	return nil
}

// fileMode is the type and mode of the file h is open on.
func (h *handle) fileMode() (uint32, error) {
	if h.mode != 0 {
		return h.mode, nil
	}
	var st unix.Stat_t
	if err := unix.Fstat(h.fd, &st); err != nil {
		return 0, os.NewSyscallError("fstat /"+h.rel, err)
	}
	h.mode = st.Mode
	return st.Mode, nil
}

func fileKind(mode uint32) string {
	switch mode & unix.S_IFMT {
	case unix.S_IFLNK:
		return "a symlink"
	case unix.S_IFREG:
		return "a regular file"
	case unix.S_IFDIR:
		return "a directory"
	case unix.S_IFCHR, unix.S_IFBLK:
		return "a device node"
	}
	return "a special file"
}

// mountOn mounts source on the handle h.
func mountOn(source string, h *handle, fstype string, flags uintptr, data string) error {
	if err := unix.Mount(source, h.proc(), fstype, flags, data); err != nil {
		return &os.PathError{Op: fmt.Sprintf("mount %s (type %s, flags %#x, data %q)", source, fstype, flags, data), Path: "/" + h.rel, Err: err}
	}
	return nil
}

// reopen opens again what h was reached by, which after a mount on h is
// the root of the new mount, not the directory beneath it.
func (r *Root) reopen(h *handle) (*handle, error) {
	return r.open(h.rel, noSymlinks, false, true)
}

// setMountAttr sets attr (MOUNT_ATTR_*) on the mount whose root h is, and
// with recursive on every mount below it, leaving its other flags alone.
func setMountAttr(h *handle, attr uint64, recursive bool) error {
	flags := unix.AT_EMPTY_PATH
	if recursive {
		flags |= unix.AT_RECURSIVE
	}
	err := unix.MountSetattr(h.fd, "", uint(flags), &unix.MountAttr{Attr_set: attr})
	if !errors.Is(err, unix.ENOSYS) {
		if err != nil {
			return &os.PathError{Op: fmt.Sprintf("mount_setattr(%#x)", attr), Path: "/" + h.rel, Err: err}
		}
		return nil
	}
	// Before Linux 5.12: a bind remount, which must repeat the flags
	// the mount has (locked ones in a user namespace), top mount only.
	var st unix.Statfs_t
	if err := unix.Fstatfs(h.fd, &st); err != nil {
		return os.NewSyscallError("fstatfs", err)
	}
	mflags := uintptr(unix.MS_REMOUNT | unix.MS_BIND)
	for _, f := range [][2]uint64{
		{unix.ST_RDONLY, unix.MS_RDONLY}, {unix.ST_NOSUID, unix.MS_NOSUID}, {unix.ST_NODEV, unix.MS_NODEV},
		{unix.ST_NOEXEC, unix.MS_NOEXEC}, {unix.ST_NOATIME, unix.MS_NOATIME}, {unix.ST_NODIRATIME, unix.MS_NODIRATIME},
		{unix.ST_RELATIME, unix.MS_RELATIME},
	} {
		if uint64(st.Flags)&f[0] != 0 {
			mflags |= uintptr(f[1])
		}
	}
	for _, f := range [][2]uint64{
		{unix.MOUNT_ATTR_RDONLY, unix.MS_RDONLY}, {unix.MOUNT_ATTR_NOSUID, unix.MS_NOSUID},
		{unix.MOUNT_ATTR_NODEV, unix.MS_NODEV}, {unix.MOUNT_ATTR_NOEXEC, unix.MS_NOEXEC},
	} {
		if attr&f[0] != 0 {
			mflags |= uintptr(f[1])
		}
	}
	return mountOn("", h, "", mflags, "")
}
