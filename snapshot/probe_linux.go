//go:build linux

package snapshot

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/builder-dev/builder/internal/archive"
	"golang.org/x/sys/unix"
)

// ProbeOverlay checks that overlay layers work on the filesystem of dir:
// it mounts a tiny overlay there, with the options the snapshotter uses
// (userxattr when userXattr is set), in a private mount namespace that
// nothing else sees, deletes a lower file through it and checks that the
// upper directory got a whiteout. It leaves nothing behind in dir.
func ProbeOverlay(ctx context.Context, dir string, userXattr bool) (retErr error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	top, err := os.MkdirTemp(dir, "overlay-probe-")
	if err != nil {
		return err
	}
	defer func() {
		if err := removeAll(top); err != nil {
			retErr = errors.Join(retErr, err)
		}
	}()
	l1, l2, upper, work := filepath.Join(top, "l1"), filepath.Join(top, "l2"), filepath.Join(top, "u"), filepath.Join(top, "w")
	for _, d := range []string{l1, l2, upper, work} {
		if err := os.Mkdir(d, 0o755); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(l1, "f"), []byte("x"), 0o644); err != nil {
		return err
	}
	opts := append([]string(nil), overlayOptions...)
	if userXattr {
		opts = append([]string(nil), userOverlayOptions...)
	}
	opts = append(opts, "lowerdir="+l1+":"+l2, "upperdir="+upper, "workdir="+work)
	if strings.ContainsAny(top, ",:") {
		return fmt.Errorf("path %s contains ',' or ':'", top)
	}
	m := []Mount{{Type: "overlay", Source: "overlay", Options: opts}}
	err = withMounts(ctx, top, [][]Mount{m}, func(roots []string) error {
		if err := os.Remove(filepath.Join(roots[0], "f")); err != nil {
			return err
		}
		if err := os.Mkdir(filepath.Join(roots[0], "d"), 0o755); err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(roots[0], "d", "g"), []byte("y"), 0o644)
	})
	if err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(upper, "f"), &st); err != nil || !archive.IsWhiteout(&st) {
		return fmt.Errorf("overlay did not write a whiteout for a deleted file (%v)", err)
	}
	return nil
}
