//go:build linux

package treecopy

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"github.com/builder-dev/builder/internal/archive"
	"golang.org/x/sys/unix"
)

// copier copies a merged view of layer directories into a new directory.
type copier struct {
	links     map[devIno]string
	xbuf      []byte
	buf       []byte
	userXattr bool
}

// Merge creates dst holding the merged view of layers (overlay upper
// format, top-most first): for each path the top-most layer that has it
// wins, 0/0 character devices hide the path in the layers below, and an
// opaque directory hides the layers below it. Owners, modes, times,
// xattrs, devices and hard links (within a layer) are kept.
func Merge(dst string, layers []string, userXattr bool) error {
	c := &copier{links: map[devIno]string{}, xbuf: make([]byte, 4096), buf: make([]byte, 128<<10), userXattr: userXattr}
	if err := os.Mkdir(dst, 0o700); err != nil {
		return err
	}
	if err := c.mergeDir(dst, layers); err != nil {
		return err
	}
	return c.metadata(layers[0], dst, true)
}

type mergedEntry struct {
	name  string
	layer int
	st    unix.Stat_t
}

func (c *copier) isOpaque(p string) bool {
	for _, n := range []string{archive.TrustedOpaque, archive.UserOpaque} {
		if v, err := archive.GetXattr(p, n, &c.xbuf); err == nil && v == "y" {
			return true
		}
	}
	return false
}

// mergeDir copies the merged contents of dirs (one directory in each
// contributing layer, top-most first) into dst.
func (c *copier) mergeDir(dst string, dirs []string) error {
	seen := map[string]bool{}
	var entries []mergedEntry
	for i, d := range dirs {
		names, err := readNames(d)
		if err != nil {
			return err
		}
		for _, n := range names {
			if seen[n] {
				continue
			}
			seen[n] = true
			e := mergedEntry{name: n, layer: i}
			p := filepath.Join(d, n)
			if err := unix.Lstat(p, &e.st); err != nil {
				return &os.PathError{Op: "lstat", Path: p, Err: err}
			}
			if archive.IsWhiteout(&e.st) {
				continue
			}
			entries = append(entries, e)
		}
	}
	slices.SortFunc(entries, func(a, b mergedEntry) int { return strings.Compare(a.name, b.name) })
	for _, e := range entries {
		src := filepath.Join(dirs[e.layer], e.name)
		to := filepath.Join(dst, e.name)
		if e.st.Mode&unix.S_IFMT != unix.S_IFDIR {
			if err := c.copyEntry(src, to, &e.st); err != nil {
				return err
			}
			continue
		}
		sub := []string{src}
		if !c.isOpaque(src) {
			for _, d := range dirs[e.layer+1:] {
				p := filepath.Join(d, e.name)
				var st unix.Stat_t
				err := unix.Lstat(p, &st)
				if errors.Is(err, unix.ENOENT) {
					continue
				}
				if err != nil {
					return &os.PathError{Op: "lstat", Path: p, Err: err}
				}
				if st.Mode&unix.S_IFMT != unix.S_IFDIR {
					break // a file or a whiteout hides the rest
				}
				sub = append(sub, p)
				if c.isOpaque(p) {
					break
				}
			}
		}
		if err := os.Mkdir(to, 0o700); err != nil {
			return err
		}
		if err := c.mergeDir(to, sub); err != nil {
			return err
		}
		if err := c.metadata(src, to, true); err != nil {
			return err
		}
	}
	return nil
}

// copyEntry copies the non-directory src to the new path to.
func (c *copier) copyEntry(src, to string, st *unix.Stat_t) error {
	if st.Nlink > 1 {
		k := devIno{uint64(st.Dev), st.Ino}
		if first, ok := c.links[k]; ok {
			if err := unix.Linkat(unix.AT_FDCWD, first, unix.AT_FDCWD, to, 0); err != nil {
				return &os.LinkError{Op: "link", Old: first, New: to, Err: err}
			}
			return nil
		}
		c.links[k] = to
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFREG:
		if err := c.copyFile(src, to); err != nil {
			return err
		}
	case unix.S_IFLNK:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		if err := os.Symlink(target, to); err != nil {
			return err
		}
	case unix.S_IFCHR, unix.S_IFBLK, unix.S_IFIFO:
		if err := unix.Mknod(to, st.Mode&unix.S_IFMT|0o600, int(st.Rdev)); err != nil {
			return &os.PathError{Op: "mknod", Path: to, Err: err}
		}
	case unix.S_IFSOCK:
		return nil // runtime state; a layer cannot hold it either
	default:
		return fmt.Errorf("%s: unknown file type %#o", src, st.Mode&unix.S_IFMT)
	}
	return c.metadata(src, to, false)
}

func (c *copier) copyFile(src, to string) error {
	in, err := os.OpenFile(src, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	// A reflink where the filesystem can share blocks; a copy otherwise.
	if unix.IoctlFileClone(int(out.Fd()), int(in.Fd())) != nil {
		_, err = io.CopyBuffer(struct{ io.Writer }{out}, struct{ io.Reader }{in}, c.buf)
	}
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// metadata gives to the owner, mode, xattrs (minus overlay's) and times of
// src. An owner the user namespace does not map is left as it is.
func (c *copier) metadata(src, to string, isDir bool) error {
	var st unix.Stat_t
	if err := unix.Lstat(src, &st); err != nil {
		return &os.PathError{Op: "lstat", Path: src, Err: err}
	}
	if err := unix.Lchown(to, int(st.Uid), int(st.Gid)); err != nil && !errors.Is(err, unix.EINVAL) {
		return &os.PathError{Op: "lchown", Path: to, Err: err}
	}
	isLink := st.Mode&unix.S_IFMT == unix.S_IFLNK
	if !isLink {
		if err := unix.Chmod(to, st.Mode&0o7777); err != nil {
			return &os.PathError{Op: "chmod", Path: to, Err: err}
		}
	}
	names, err := archive.ListXattrs(src, &c.xbuf)
	if err != nil {
		return err
	}
	for _, n := range names {
		if archive.IsOverlayXattr(n) {
			continue
		}
		v, err := archive.GetXattr(src, n, &c.xbuf)
		if errors.Is(err, unix.ENODATA) {
			continue
		}
		if err != nil {
			return err
		}
		if err := unix.Lsetxattr(to, n, []byte(v), 0); err != nil &&
			!errors.Is(err, unix.ENOTSUP) && !errors.Is(err, unix.EPERM) {
			return &os.PathError{Op: "lsetxattr " + n, Path: to, Err: err}
		}
	}
	ts := []unix.Timespec{unix.NsecToTimespec(unix.TimespecToNsec(st.Atim)), unix.NsecToTimespec(unix.TimespecToNsec(st.Mtim))}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, to, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "utimensat", Path: to, Err: err}
	}
	return nil
}

func Dir(dst, src string) error {
	return Merge(dst, []string{src}, false)
}
