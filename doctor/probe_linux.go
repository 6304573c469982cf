//go:build linux

package doctor

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"
)

// probeTimeout bounds each probe: a hung mount must not hang doctor.
const probeTimeout = 10 * time.Second

// inUserns makes cmd start in a new user (and mount) namespace as root,
// mapping only the caller's own uid and gid, as an unprivileged user can.
func inUserns(cmd *exec.Cmd, h Host, mountns bool) {
	flags := uintptr(syscall.CLONE_NEWUSER)
	if mountns {
		flags |= syscall.CLONE_NEWNS
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:                 flags,
		UidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: h.UID, Size: 1}},
		GidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: h.GID, Size: 1}},
		GidMappingsEnableSetgroups: false,
	}
}

// probeUserns starts `true` in a new user namespace.
func probeUserns(ctx context.Context, h Host) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	bin, err := h.LookPath("true")
	if err != nil {
		return fmt.Errorf("no `true` to start: %w", err)
	}
	cmd := exec.CommandContext(ctx, bin)
	inUserns(cmd, h, false)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%w %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// probeOverlay mounts an overlay of a temporary lower and upper directory
// with mount(8), in a private mount namespace so the mount goes away with
// the process; userns adds a user namespace and the userxattr option, as
// rootless builds mount.
func probeOverlay(ctx context.Context, h Host, userns bool) error {
	ctx, cancel := context.WithTimeout(ctx, probeTimeout)
	defer cancel()
	mount, err := h.LookPath("mount")
	if err != nil {
		return fmt.Errorf("no mount(8) to probe with: %w", err)
	}
	dir, err := os.MkdirTemp("", "builder-doctor-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	for _, d := range []string{"lower", "upper", "work", "merged"} {
		if err := os.Mkdir(filepath.Join(dir, d), 0o755); err != nil {
			return err
		}
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", filepath.Join(dir, "lower"), filepath.Join(dir, "upper"), filepath.Join(dir, "work"))
	if userns {
		opts += ",userxattr"
	}
	args := []string{"-t", "overlay", "overlay", "-o", opts, filepath.Join(dir, "merged")}
	var cmd *exec.Cmd
	if userns {
		// A mount namespace owned by a new user namespace gets its
		// shared mounts as slaves: nothing propagates back to the host.
		cmd = exec.CommandContext(ctx, mount, args...)
		inUserns(cmd, h, true)
	} else {
		// As root, a new mount namespace would share / with the host;
		// unshare(1) makes it private first.
		unshare, err := h.LookPath("unshare")
		if err != nil {
			return fmt.Errorf("no unshare(1) to probe with: %w", err)
		}
		cmd = exec.CommandContext(ctx, unshare, append([]string{"--mount", "--propagation", "private", mount}, args...)...)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("%w %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}
