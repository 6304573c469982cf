//go:build !linux

package snapshot

import (
	"context"
	"errors"
	"io"
	"runtime"
)

// errUnsupported is returned by everything that needs Linux: overlay
// mounts, mount namespaces, whiteout device nodes and Linux xattrs.
var errUnsupported = errors.New("snapshots are not supported on " + runtime.GOOS + " (they need Linux overlayfs)")

func checkPlatform() error { return errUnsupported }

func syncFS(string) error { return errUnsupported }

func diskUsage(string) (int64, error) { return 0, errUnsupported }

func withMounts(context.Context, string, [][]Mount, func([]string) error) error {
	return errUnsupported
}

// WriteDiff writes an overlay upper directory as an OCI layer tar; it
// needs Linux.
func WriteDiff(context.Context, string, io.Writer, DiffOptions) error { return errUnsupported }

// Apply writes an OCI layer tar into a directory in overlay format; it
// needs Linux.
func Apply(context.Context, string, io.Reader, ApplyOptions) (ApplyResult, error) {
	return ApplyResult{}, errUnsupported
}

// Mount mounts m at target; it needs Linux.
func (m Mount) Mount(target string) error { return errUnsupported }

// MountAll mounts each of mounts at target; it needs Linux.
func MountAll(mounts []Mount, target string) error { return errUnsupported }

// Unmount detaches whatever is mounted at target; it needs Linux.
func Unmount(target string) error { return errUnsupported }
