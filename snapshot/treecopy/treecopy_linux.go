//go:build linux

package treecopy

import (
	"fmt"
	"os"
	"slices"

	"golang.org/x/sys/unix"
)

func statx(p string, st *unix.Statx_t) error {
	if err := unix.Statx(unix.AT_FDCWD, p, unix.AT_SYMLINK_NOFOLLOW,
		unix.STATX_BASIC_STATS|unix.STATX_BTIME, st); err != nil {
		return &os.PathError{Op: "statx", Path: p, Err: err}
	}
	return nil
}

func tsBefore(a, b unix.StatxTimestamp) bool {
	return a.Sec < b.Sec || (a.Sec == b.Sec && a.Nsec < b.Nsec)
}

func tsEqual(a, b unix.StatxTimestamp) bool { return a.Sec == b.Sec && a.Nsec == b.Nsec }

func isWhiteoutX(st *unix.Statx_t) bool {
	return uint32(st.Mode)&unix.S_IFMT == unix.S_IFCHR && st.Rdev_major == 0 && st.Rdev_minor == 0
}

func isDirX(st *unix.Statx_t) bool { return uint32(st.Mode)&unix.S_IFMT == unix.S_IFDIR }

func readNames(dir string) ([]string, error) {
	f, err := os.Open(dir)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	names, err := f.Readdirnames(-1)
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", dir, err)
	}
	slices.Sort(names)
	return names, nil
}

// devIno identifies an inode, for finding the other names of a hard link.
type devIno struct{ dev, ino uint64 }
