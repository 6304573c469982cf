// Package snapshot owns layer directories on disk: preparing a snapshot of
// parent layers with an empty layer, committing it, turning a layer
// directory into an OCI layer tar (overlay whiteouts become .wh. entries),
// and applying an OCI layer tar into a directory in overlay format. Two
// Snapshotters share one on-disk layout: overlay mounts, or, where overlayfs
// cannot be mounted, copies (whose engine is snapshot/treecopy). The tar
// conversions themselves are internal/archive's. It is the only package
// that mounts filesystems for layers.
package snapshot

import (
	"fmt"
	"os"
	"path/filepath"

	"github.com/builder-dev/builder/snapshot/mount"
	"github.com/builder-dev/builder/snapshot/treecopy"
)

// ErrMountDataTooLong is returned (wrapped in a *MountError on Linux) when
// a mount's options do not fit in the one page the kernel accepts.
var ErrMountDataTooLong = mount.ErrDataTooLong

// Mount is one filesystem mount described as data (package mount, a leaf
// that the sandbox init can link without this package).
type Mount = mount.Mount

// MountError says which mount failed, with everything passed to mount(2).
type MountError = mount.Error

// MountAll mounts each of mounts at target, in order.
func MountAll(mounts []Mount, target string) error { return mount.All(mounts, target) }

// Unmount detaches whatever is mounted at target, and everything below it.
func Unmount(target string) error { return mount.Unmount(target) }

// WritableView turns a Snapshotter's read-only view of layers into a
// writable one whose writes go under dir (which must not exist): an
// overlay gets its upper and work directories there, the copy
// Snapshotter's directory is copied there.
func WritableView(view []Mount, dir string) ([]Mount, error) {
	if len(view) == 1 && view[0].Type == "bind" {
		// The copy-based snapshotter's view is a directory: the writes go
		// to a copy of it.
		if err := os.Mkdir(dir, 0o755); err != nil {
			return nil, err
		}
		cp := filepath.Join(dir, "copy")
		if err := treecopy.Dir(cp, view[0].Source); err != nil {
			return nil, err
		}
		return []Mount{{Type: "bind", Source: cp, Options: []string{"bind"}}}, nil
	}
	if len(view) != 1 || view[0].Type != "overlay" {
		return nil, fmt.Errorf("cannot make a writable view of %v", view)
	}
	upper, work := filepath.Join(dir, "upper"), filepath.Join(dir, "work")
	for _, d := range []string{dir, upper, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return nil, err
		}
	}
	m := view[0]
	var opts []string
	for _, opt := range m.Options {
		if opt != "ro" {
			opts = append(opts, opt)
		}
	}
	m.Options = append(opts, "upperdir="+upper, "workdir="+work)
	return []Mount{m}, nil
}
