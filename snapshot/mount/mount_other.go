//go:build !linux

package mount

import (
	"errors"
	"runtime"
)

var errUnsupported = errors.New("mounts are not supported on " + runtime.GOOS + " (they need Linux)")

// Mount mounts m at target; it needs Linux.
func (m Mount) Mount(target string) error { return errUnsupported }

// All mounts each of mounts at target; it needs Linux.
func All(mounts []Mount, target string) error { return errUnsupported }

// Unmount detaches whatever is mounted at target; it needs Linux.
func Unmount(target string) error { return errUnsupported }
