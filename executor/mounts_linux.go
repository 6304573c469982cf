package executor

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/builder-dev/builder/snapshot"
	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
)

// runMounts mounts the RUN --mount filesystems inside the rootfs, in order.
func (r *rootfs) runMounts(mounts []Mount) error {
	for i, m := range mounts {
		var err error
		switch m.Type {
		case MountBind:
			err = r.bind([]BindMount{{Source: m.Source, Target: m.Target, Readonly: m.Readonly}})
		case MountTmpfs:
			err = r.tmpfs(m)
		case MountLayers:
			err = r.layers(i, m)
		case MountSecret:
			err = r.secret(i, m)
		default:
			err = fmt.Errorf("unknown mount type %q", m.Type)
		}
		if err != nil {
			return stepError("mounting "+m.Type+" at "+m.Target, err)
		}
	}
	return nil
}

func (r *rootfs) tmpfs(m Mount) error {
	h, err := r.mountpoint(m.Target, followInRoot, true)
	if err != nil {
		return err
	}
	defer h.Close()
	data := "mode=1777"
	if m.Size > 0 {
		data += ",size=" + strconv.FormatInt(m.Size, 10)
	}
	flags := uintptr(unix.MS_NOSUID | unix.MS_NODEV)
	if m.Readonly {
		flags |= unix.MS_RDONLY
	}
	return mountOn("tmpfs", h, "tmpfs", flags, data)
}

// layers mounts m.Layers at StateDir/mounts/N, which only this mount
// namespace sees, and binds m.Source from there.
func (r *rootfs) layers(n int, m Mount) error {
	mp := filepath.Join(r.stateDir, "mounts", strconv.Itoa(n))
	if err := os.MkdirAll(mp, 0o700); err != nil {
		return err
	}
	if err := snapshot.MountAll(m.Layers, mp); err != nil {
		return err
	}
	src, err := securejoin.SecureJoin(mp, m.Source)
	if err != nil {
		return err
	}
	if _, err := os.Stat(src); err != nil {
		return fmt.Errorf("source %s: %w", m.Source, err)
	}
	return r.bind([]BindMount{{Source: src, Target: m.Target, Readonly: m.Readonly}})
}

// setAllCaps gives the calling thread, for an insecure sandbox running as
// root, every capability it is permitted (all of the bounding set, which
// the builder itself may have been given less of) in its effective and
// inheritable sets; anyone else gets none, as in a secure sandbox.
func setAllCaps(root bool) error {
	if !root {
		return setCaps(false)
	}
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return os.NewSyscallError("capget", err)
	}
	var bounding [2]uint32
	// PR_CAPBSET_READ fails with EINVAL past the kernel's last capability.
	for c := uintptr(0); c < 64; c++ {
		in, err := unix.PrctlRetInt(unix.PR_CAPBSET_READ, c, 0, 0, 0)
		if err != nil {
			break
		}
		if in == 1 {
			bounding[c/32] |= 1 << (c % 32)
		}
	}
	for i := range data {
		data[i].Effective = data[i].Permitted
		data[i].Inheritable = data[i].Permitted & bounding[i]
	}
	if err := unix.Capset(&hdr, &data[0]); err != nil {
		return os.NewSyscallError("capset", err)
	}
	return nil
}
