//go:build linux

package mount

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// mountOverlayLayers mounts an overlay whose options do not fit in the one
// page mount(2) takes, with the mount API of Linux 6.8 and later: one
// fsconfig call per lower layer ("lowerdir+"), so only overlay's own limit
// of 500 layers applies. It returns errFsconfigUnsupported when the kernel
// lacks that API (then the page limit stands).
func mountOverlayLayers(target string, flags uintptr, data string) error {
	fd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return fmt.Errorf("%w: fsopen: %w", errFsconfigUnsupported, err)
	}
	defer unix.Close(fd)
	for opt := range strings.SplitSeq(data, ",") {
		key, val, hasVal := strings.Cut(opt, "=")
		switch {
		case key == "lowerdir":
			for dir := range strings.SplitSeq(val, ":") {
				if err := unix.FsconfigSetString(fd, "lowerdir+", dir); err != nil {
					if err == unix.EINVAL && len(dir) > 0 {
						// Kernels before 6.8 know fsopen but not "lowerdir+".
						return fmt.Errorf("%w: fsconfig lowerdir+ %s: %w%s", errFsconfigUnsupported, dir, err, fsLog(fd))
					}
					return fmt.Errorf("fsconfig lowerdir+ %s: %w%s", dir, err, fsLog(fd))
				}
			}
		case hasVal:
			err = unix.FsconfigSetString(fd, key, val)
		default:
			err = unix.FsconfigSetFlag(fd, key)
		}
		if err != nil {
			return fmt.Errorf("fsconfig %s: %w%s", opt, err, fsLog(fd))
		}
	}
	if err := unix.FsconfigCreate(fd); err != nil {
		return fmt.Errorf("creating overlay: %w%s", err, fsLog(fd))
	}
	var attrs int
	for _, f := range []struct {
		flag uintptr
		attr int
	}{{unix.MS_RDONLY, unix.MOUNT_ATTR_RDONLY}, {unix.MS_NOSUID, unix.MOUNT_ATTR_NOSUID}, {unix.MS_NODEV, unix.MOUNT_ATTR_NODEV},
		{unix.MS_NOEXEC, unix.MOUNT_ATTR_NOEXEC}, {unix.MS_NOATIME, unix.MOUNT_ATTR_NOATIME}} {
		if flags&f.flag != 0 {
			attrs |= f.attr
		}
	}
	mfd, err := unix.Fsmount(fd, unix.FSMOUNT_CLOEXEC, attrs)
	if err != nil {
		return fmt.Errorf("fsmount: %w", err)
	}
	defer unix.Close(mfd)
	if err := unix.MoveMount(mfd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("move_mount to %s: %w", target, err)
	}
	return nil
}

var errFsconfigUnsupported = errors.New("the kernel's mount API cannot take overlay layers one by one (Linux 6.8 or later can)")

// fsLog returns what the filesystem said about a failed fsconfig, read
// from the context's message log, as ": msg; msg".
func fsLog(fd int) string {
	var msgs []string
	buf := make([]byte, 1024)
	for range 8 {
		n, err := unix.Read(fd, buf)
		if err != nil || n <= 0 {
			break
		}
		msgs = append(msgs, strings.TrimSpace(string(buf[:n])))
	}
	if len(msgs) == 0 {
		return ""
	}
	return " (" + strings.Join(msgs, "; ") + ")"
}
