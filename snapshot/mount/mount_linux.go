//go:build linux

package mount

import (
	"errors"
	"fmt"
	"strings"

	"golang.org/x/sys/unix"
)

// flagOptions maps mount option words to mount(2) flags; a false value
// clears the flag. Anything not listed is passed as filesystem data.
var flagOptions = map[string]struct {
	clear bool
	flag  uintptr
}{
	"ro":          {false, unix.MS_RDONLY},
	"rw":          {true, unix.MS_RDONLY},
	"bind":        {false, unix.MS_BIND},
	"rbind":       {false, unix.MS_BIND | unix.MS_REC},
	"nosuid":      {false, unix.MS_NOSUID},
	"suid":        {true, unix.MS_NOSUID},
	"nodev":       {false, unix.MS_NODEV},
	"dev":         {true, unix.MS_NODEV},
	"noexec":      {false, unix.MS_NOEXEC},
	"exec":        {true, unix.MS_NOEXEC},
	"noatime":     {false, unix.MS_NOATIME},
	"relatime":    {false, unix.MS_RELATIME},
	"strictatime": {false, unix.MS_STRICTATIME},
}

func parseOptions(options []string) (flags uintptr, data string) {
	var extra []string
	for _, o := range options {
		if f, ok := flagOptions[o]; ok {
			if f.clear {
				flags &^= f.flag
			} else {
				flags |= f.flag
			}
			continue
		}
		extra = append(extra, o)
	}
	return flags, strings.Join(extra, ",")
}

// Mount mounts m at target. A read-only bind mount needs a second
// remount, which Mount does.
func (m Mount) Mount(target string) error {
	flags, data := parseOptions(m.Options)
	// mount(2) copies at most one page of data; longer data would reach
	// the filesystem truncated. An overlay of many layers is mounted layer
	// by layer with the newer mount API instead; elsewhere, say what is
	// wrong.
	if limit := unix.Getpagesize() - 1; len(data) > limit {
		err := fmt.Errorf("%w: %d bytes of mount options exceed the kernel's limit of %d (one page); for overlay this means too many layers or too long layer paths, so use fewer layers or a shorter state directory path", ErrDataTooLong, len(data), limit)
		if m.Type == "overlay" && flags&^(unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC|unix.MS_NOATIME) == 0 {
			ferr := mountOverlayLayers(target, flags, data)
			if ferr == nil {
				return nil
			}
			if !errors.Is(ferr, errFsconfigUnsupported) {
				err = ferr
			} else {
				err = fmt.Errorf("%w; %w", err, ferr)
			}
		}
		return &Error{Op: "mount", Source: m.Source, Target: target, Type: m.Type, Flags: flags, Data: data, Err: err}
	}
	first := flags
	if flags&unix.MS_BIND != 0 {
		// The kernel ignores MS_RDONLY on the initial bind; it takes a remount.
		first &^= unix.MS_RDONLY
	}
	if err := unix.Mount(m.Source, target, m.Type, first, data); err != nil {
		return &Error{Op: "mount", Source: m.Source, Target: target, Type: m.Type, Flags: flags, Data: data, Err: err}
	}
	if flags&unix.MS_BIND != 0 && flags&unix.MS_RDONLY != 0 {
		rflags := unix.MS_REMOUNT | unix.MS_BIND | unix.MS_RDONLY | (flags & (unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC))
		if err := unix.Mount("", target, "", rflags, ""); err != nil {
			return &Error{Op: "remount read-only", Source: m.Source, Target: target, Type: m.Type, Flags: rflags, Err: err}
		}
	}
	return nil
}

// All mounts each of mounts at target, in order.
func All(mounts []Mount, target string) error {
	for _, m := range mounts {
		if err := m.Mount(target); err != nil {
			return err
		}
	}
	return nil
}

// Unmount detaches whatever is mounted at target, and everything below it.
func Unmount(target string) error {
	if err := unix.Unmount(target, unix.MNT_DETACH); err != nil && err != unix.EINVAL && err != unix.ENOENT {
		return &Error{Op: "unmount", Target: target, Err: err}
	}
	return nil
}
