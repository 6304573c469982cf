//go:build !linux

package snapshot

import (
	"context"
	"errors"
	"runtime"
)

// errUnsupported is returned by everything that needs Linux: overlay
// mounts, mount namespaces, whiteout device nodes and Linux xattrs.
var errUnsupported = errors.New("snapshots are not supported on " + runtime.GOOS + " (they need Linux overlayfs)")

func checkPlatform() error { return errUnsupported }

func syncFS(string) error { return errUnsupported }

func openSync(string) (Syncer, error) { return nil, errUnsupported }

func diskUsage(string) (int64, error) { return 0, errUnsupported }

func withMounts(context.Context, string, [][]Mount, func([]string) error) error {
	return errUnsupported
}
