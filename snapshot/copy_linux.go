//go:build linux

package snapshot

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

const (
	copiedMarker = "copied"
	parentsFile  = "parents"
)

// prepareCopy builds root/<id>/rootfs from the merged view of parents.
func (s *Snapshotter) prepareCopy(id string, parents []string) error {
	for _, p := range parents {
		if err := checkID(p); err != nil {
			return err
		}
	}
	rootfs := s.rootfs(id)
	if len(parents) == 0 {
		if err := os.Mkdir(rootfs, 0o755); err != nil {
			return err
		}
		if err := os.Chmod(rootfs, 0o755); err != nil {
			return err
		}
	} else {
		view, err := s.ensureView(parents)
		if err != nil {
			return err
		}
		if err := copyMerged(rootfs, []string{view}, s.userXattr); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(s.dir(id), parentsFile), []byte(strings.Join(parents, "\n")), 0o600); err != nil {
		return err
	}
	// Written last: anything in rootfs with a newer ctime may have been
	// changed after the copy.
	return os.WriteFile(filepath.Join(s.dir(id), copiedMarker), nil, 0o600)
}

// ensureView returns the directory holding the merged view of parents,
// building it from the layers if it does not exist yet.
func (s *Snapshotter) ensureView(parents []string) (string, error) {
	for _, p := range parents {
		if err := checkID(p); err != nil {
			return "", err
		}
	}
	for _, p := range parents {
		if !s.Exists(p) {
			return "", fmt.Errorf("building view: snapshot %s: %w", p, os.ErrNotExist)
		}
	}
	dir := s.viewDir(parents)
	if _, err := os.Lstat(dir); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return "", fmt.Errorf("building view: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".tmp-")
	if err != nil {
		return "", fmt.Errorf("building view: %w", err)
	}
	defer removeAll(tmp)
	layers := make([]string, 0, len(parents)+1)
	for _, p := range parents {
		layers = append(layers, s.FS(p))
	}
	layers = append(layers, filepath.Join(s.root, emptyDir))
	built := filepath.Join(tmp, "v")
	if err := copyMerged(built, layers, s.userXattr); err != nil {
		return "", fmt.Errorf("building the merged view of %s: %w", strings.Join(parents, ", "), err)
	}
	if err := os.Rename(built, dir); err != nil {
		// Someone else built it meanwhile: use theirs.
		if _, serr := os.Lstat(dir); serr == nil {
			return dir, nil
		}
		return "", fmt.Errorf("building view: %w", err)
	}
	return dir, nil
}

// commitCopy turns the root directory of a copy-mode snapshot into its
// layer: the difference from the parents' view goes into fs, and the root
// directory is kept as the view of id and its parents. It does nothing for
// a snapshot prepared without the copy mode.
func (s *Snapshotter) commitCopy(id string) error {
	rootfs := s.rootfs(id)
	if _, err := os.Lstat(rootfs); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	b, err := os.ReadFile(filepath.Join(s.dir(id), parentsFile))
	if err != nil {
		return err
	}
	var parents []string
	if len(b) > 0 {
		parents = strings.Split(string(b), "\n")
	}
	lower := filepath.Join(s.root, emptyDir)
	if len(parents) > 0 {
		if lower, err = s.ensureView(parents); err != nil {
			return err
		}
	}
	// A caller that wrote into fs directly (Apply, downloads) did not use
	// the root directory, which is then not the view of the layer.
	direct, err := dirIsEmpty(s.FS(id))
	if err != nil {
		return err
	}
	direct = !direct
	var marker unix.Statx_t
	if err := statx(filepath.Join(s.dir(id), copiedMarker), &marker); err != nil {
		return err
	}
	d := &copyDiffer{upper: rootfs, lower: lower, out: s.FS(id), marker: marker, userXattr: s.userXattr,
		xbuf: make([]byte, 4096), buf1: make([]byte, 64<<10), buf2: make([]byte, 64<<10)}
	if err := d.diffDir("", func() error { return nil }); err != nil {
		return fmt.Errorf("computing the layer: %w", err)
	}
	empty, err := dirIsEmpty(s.FS(id))
	if err != nil {
		return err
	}
	if empty || direct {
		// Either the view is the parents' view, kept already, or the
		// root directory is not the view; it is built when needed.
		err = removeAll(rootfs)
	} else {
		view := s.viewDir(append([]string{id}, parents...))
		if err = os.MkdirAll(filepath.Dir(view), 0o700); err == nil {
			err = os.Rename(rootfs, view)
		}
	}
	if err != nil {
		return err
	}
	_ = os.Remove(filepath.Join(s.dir(id), copiedMarker))
	_ = os.Remove(filepath.Join(s.dir(id), parentsFile))
	return nil
}

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

// copier copies a merged view of layer directories into a new directory.
type copier struct {
	links     map[devIno]string
	xbuf      []byte
	buf       []byte
	userXattr bool
}

// copyMerged creates dst holding the merged view of layers (overlay upper
// format, top-most first): for each path the top-most layer that has it
// wins, 0/0 character devices hide the path in the layers below, and an
// opaque directory hides the layers below it. Owners, modes, times,
// xattrs, devices and hard links (within a layer) are kept.
func copyMerged(dst string, layers []string, userXattr bool) error {
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
	for _, n := range []string{trustedOpaque, userOpaque} {
		if v, err := getXattr(p, n, &c.xbuf); err == nil && v == "y" {
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
			if isWhiteout(&e.st) {
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
	names, err := listXattrs(src, &c.xbuf)
	if err != nil {
		return err
	}
	for _, n := range names {
		if isOverlayXattr(n) {
			continue
		}
		v, err := getXattr(src, n, &c.xbuf)
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

// copyDiffer writes the difference between upper (a full tree the build
// changed) and lower (the full tree it started from) into out, in overlay
// upper format.
type copyDiffer struct {
	upper, lower, out string
	marker            unix.Statx_t
	userXattr         bool
	xbuf              []byte
	buf1, buf2        []byte
	cp                *copier
}

func (d *copyDiffer) copier() *copier {
	if d.cp == nil {
		d.cp = &copier{links: map[devIno]string{}, xbuf: make([]byte, 4096), buf: d.buf1, userXattr: d.userXattr}
	}
	return d.cp
}

// diffDir compares upper/rel with lower/rel, both directories. ensure
// creates out/rel (and its parents) when something has to go in it.
func (d *copyDiffer) diffDir(rel string, ensure func() error) error {
	uNames, err := readNames(filepath.Join(d.upper, rel))
	if err != nil {
		return err
	}
	lNames, err := readNames(filepath.Join(d.lower, rel))
	if err != nil {
		return err
	}
	inUpper := make(map[string]bool, len(uNames))
	for _, n := range uNames {
		inUpper[n] = true
		r := filepath.Join(rel, n)
		up := filepath.Join(d.upper, r)
		var ust, lst unix.Statx_t
		if err := statx(up, &ust); err != nil {
			return err
		}
		if uint32(ust.Mode)&unix.S_IFMT == unix.S_IFSOCK {
			continue
		}
		err := statx(filepath.Join(d.lower, r), &lst)
		lowerExists := err == nil && !isWhiteoutX(&lst)
		if err != nil && !errors.Is(err, unix.ENOENT) {
			return err
		}
		switch {
		case !lowerExists:
			if err := d.addNew(r, ensure, false); err != nil {
				return err
			}
		case isDirX(&ust) && (!isDirX(&lst) || d.recreated(&ust)):
			// Overlay makes a directory created where something was
			// deleted opaque; do the same.
			if err := d.addNew(r, ensure, true); err != nil {
				return err
			}
		case isDirX(&ust):
			created := false
			ensureSub := func() error {
				if created {
					return nil
				}
				if err := ensure(); err != nil {
					return err
				}
				if err := os.Mkdir(filepath.Join(d.out, r), 0o700); err != nil {
					return err
				}
				created = true
				return nil
			}
			same, err := d.same(r, &ust, &lst)
			if err != nil {
				return err
			}
			if !same {
				if err := ensureSub(); err != nil {
					return err
				}
			}
			if err := d.diffDir(r, ensureSub); err != nil {
				return err
			}
			if created {
				if err := d.copier().metadata(up, filepath.Join(d.out, r), true); err != nil {
					return err
				}
			}
		default:
			same, err := d.same(r, &ust, &lst)
			if err != nil {
				return err
			}
			if !same {
				if err := d.addNew(r, ensure, false); err != nil {
					return err
				}
			}
		}
	}
	for _, n := range lNames {
		if inUpper[n] {
			continue
		}
		r := filepath.Join(rel, n)
		var lst unix.Stat_t
		if err := unix.Lstat(filepath.Join(d.lower, r), &lst); err != nil {
			return err
		}
		if isWhiteout(&lst) || lst.Mode&unix.S_IFMT == unix.S_IFSOCK {
			continue // nothing visible was there
		}
		if err := ensure(); err != nil {
			return err
		}
		p := filepath.Join(d.out, r)
		if err := unix.Mknod(p, unix.S_IFCHR, 0); err != nil {
			return &os.PathError{Op: "mknod whiteout", Path: p, Err: err}
		}
	}
	return nil
}

// recreated reports whether the directory was made after the copy (it was
// deleted and made again, or a new one renamed over it).
func (d *copyDiffer) recreated(st *unix.Statx_t) bool {
	if st.Mask&unix.STATX_BTIME == 0 || d.marker.Mask&unix.STATX_BTIME == 0 {
		return false
	}
	return tsBefore(d.marker.Btime, st.Btime)
}

// addNew puts upper/rel, and everything below it, into out.
func (d *copyDiffer) addNew(rel string, ensure func() error, opaque bool) error {
	if err := ensure(); err != nil {
		return err
	}
	up := filepath.Join(d.upper, rel)
	to := filepath.Join(d.out, rel)
	var st unix.Stat_t
	if err := unix.Lstat(up, &st); err != nil {
		return &os.PathError{Op: "lstat", Path: up, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		// The root directory is thrown away or kept read-only, so the
		// layer can share its inode.
		if err := unix.Linkat(unix.AT_FDCWD, up, unix.AT_FDCWD, to, 0); err == nil {
			return nil
		}
		return d.copier().copyEntry(up, to, &st)
	}
	if err := os.Mkdir(to, 0o700); err != nil {
		return err
	}
	if opaque {
		name := trustedOpaque
		if d.userXattr {
			name = userOpaque
		}
		if err := unix.Lsetxattr(to, name, []byte("y"), 0); err != nil {
			return &os.PathError{Op: "lsetxattr " + name, Path: to, Err: err}
		}
	}
	names, err := readNames(up)
	if err != nil {
		return err
	}
	for _, n := range names {
		if err := d.addNew(filepath.Join(rel, n), func() error { return nil }, false); err != nil {
			return err
		}
	}
	return d.copier().metadata(up, to, true)
}

// same reports whether upper/rel is unchanged from lower/rel: same type,
// owner, mode, mtime, size, device, link target, xattrs and, for regular
// files written since the copy, content.
func (d *copyDiffer) same(rel string, u, l *unix.Statx_t) (bool, error) {
	if u.Mode != l.Mode || u.Uid != l.Uid || u.Gid != l.Gid || !tsEqual(u.Mtime, l.Mtime) ||
		u.Rdev_major != l.Rdev_major || u.Rdev_minor != l.Rdev_minor {
		return false, nil
	}
	isDir := isDirX(u)
	if !isDir && u.Size != l.Size {
		return false, nil
	}
	if tsBefore(u.Ctime, d.marker.Ctime) {
		return true, nil // untouched since it was copied
	}
	up, lp := filepath.Join(d.upper, rel), filepath.Join(d.lower, rel)
	ux, err := d.xattrs(up)
	if err != nil {
		return false, err
	}
	lx, err := d.xattrs(lp)
	if err != nil {
		return false, err
	}
	if ux != lx {
		return false, nil
	}
	switch uint32(u.Mode) & unix.S_IFMT {
	case unix.S_IFLNK:
		a, err1 := os.Readlink(up)
		b, err2 := os.Readlink(lp)
		if err := errors.Join(err1, err2); err != nil {
			return false, err
		}
		return a == b, nil
	case unix.S_IFREG:
		return d.sameContent(up, lp)
	}
	return true, nil
}

// xattrs returns p's xattrs but overlay's, in a comparable form.
func (d *copyDiffer) xattrs(p string) (string, error) {
	names, err := listXattrs(p, &d.xbuf)
	if err != nil {
		return "", err
	}
	slices.Sort(names)
	var b strings.Builder
	for _, n := range names {
		if isOverlayXattr(n) {
			continue
		}
		v, err := getXattr(p, n, &d.xbuf)
		if errors.Is(err, unix.ENODATA) {
			continue
		}
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "%q=%q\n", n, v)
	}
	return b.String(), nil
}

func (d *copyDiffer) sameContent(a, b string) (bool, error) {
	fa, err := os.OpenFile(a, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return false, err
	}
	defer fa.Close()
	fb, err := os.OpenFile(b, os.O_RDONLY|unix.O_NOFOLLOW, 0)
	if err != nil {
		return false, err
	}
	defer fb.Close()
	for {
		na, erra := io.ReadFull(fa, d.buf1)
		nb, errb := io.ReadFull(fb, d.buf2)
		if na != nb || !bytes.Equal(d.buf1[:na], d.buf2[:nb]) {
			return false, nil
		}
		if erra == io.EOF || erra == io.ErrUnexpectedEOF {
			return errb == io.EOF || errb == io.ErrUnexpectedEOF, nil
		}
		if erra != nil {
			return false, erra
		}
		if errb != nil {
			return false, errb
		}
	}
}

// CopyDir copies the directory tree src to dst, which must not exist,
// keeping owners, modes, times, xattrs (but overlay's), devices and hard
// links. A 0/0 character device in src is taken as a whiteout and skipped.
func CopyDir(dst, src string) error {
	return copyMerged(dst, []string{src}, false)
}
