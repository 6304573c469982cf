package rootfs

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	snapmount "github.com/builder-dev/builder/snapshot/mount"
	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
)

// RunMounts mounts the RUN --mount filesystems inside the rootfs, in order.
func (r *Root) RunMounts(mounts []Mount) error {
	for i, m := range mounts {
		var err error
		switch m.Type {
		case MountBind:
			err = r.Bind([]BindMount{{Source: m.Source, Target: m.Target, Readonly: m.Readonly}})
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

func (r *Root) tmpfs(m Mount) error {
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
func (r *Root) layers(n int, m Mount) error {
	mp := filepath.Join(r.stateDir, "mounts", strconv.Itoa(n))
	if err := os.MkdirAll(mp, 0o700); err != nil {
		return err
	}
	if err := snapmount.All(m.Layers, mp); err != nil {
		return err
	}
	src, err := securejoin.SecureJoin(mp, m.Source)
	if err != nil {
		return err
	}
	if _, err := os.Stat(src); err != nil {
		return fmt.Errorf("source %s: %w", m.Source, err)
	}
	return r.Bind([]BindMount{{Source: src, Target: m.Target, Readonly: m.Readonly}})
}
