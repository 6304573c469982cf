//go:build linux

package treecopy

import (
	"bytes"
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

// Diff writes into out, an empty directory, the difference between upper
// (a full tree a build changed) and lower (the full tree it started from),
// in overlay upper format: new and changed entries, 0/0 whiteouts for
// deleted ones, and opaque directories (the user.overlay namespace with
// userXattr) for directories deleted and made again. marker is a file
// written when upper was a complete copy of lower: entries whose ctime is
// older are unchanged, directories born after it were made again.
func Diff(upper, lower, out, marker string, userXattr bool) error {
	d := &copyDiffer{upper: upper, lower: lower, out: out, userXattr: userXattr,
		xbuf: make([]byte, 4096), buf1: make([]byte, 64<<10), buf2: make([]byte, 64<<10)}
	if err := statx(marker, &d.marker); err != nil {
		return err
	}
	return d.diffDir("", func() error { return nil })
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
		if err := d.diffEntry(filepath.Join(rel, n), ensure); err != nil {
			return err
		}
	}
	for _, n := range lNames {
		if inUpper[n] {
			continue
		}
		if err := d.deleted(filepath.Join(rel, n), ensure); err != nil {
			return err
		}
	}
	return nil
}

// diffEntry compares upper/r, which exists, with lower/r.
func (d *copyDiffer) diffEntry(r string, ensure func() error) error {
	var ust, lst unix.Statx_t
	if err := statx(filepath.Join(d.upper, r), &ust); err != nil {
		return err
	}
	if uint32(ust.Mode)&unix.S_IFMT == unix.S_IFSOCK {
		return nil
	}
	err := statx(filepath.Join(d.lower, r), &lst)
	lowerExists := err == nil && !isWhiteoutX(&lst)
	if err != nil && !errors.Is(err, unix.ENOENT) {
		return err
	}
	switch {
	case !lowerExists:
		return d.addNew(r, ensure, false)
	case isDirX(&ust) && (!isDirX(&lst) || d.recreated(&ust)):
		// Overlay makes a directory created where something was
		// deleted opaque; do the same.
		return d.addNew(r, ensure, true)
	case isDirX(&ust):
		return d.diffSubdir(r, &ust, &lst, ensure)
	}
	same, err := d.same(r, &ust, &lst)
	if err != nil || same {
		return err
	}
	return d.addNew(r, ensure, false)
}

// diffSubdir compares the directory upper/r with the directory lower/r: out
// gets r when its own metadata changed or something below it did.
func (d *copyDiffer) diffSubdir(r string, ust, lst *unix.Statx_t, ensure func() error) error {
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
	same, err := d.same(r, ust, lst)
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
	if !created {
		return nil
	}
	return d.copier().metadata(filepath.Join(d.upper, r), filepath.Join(d.out, r), true)
}

// deleted records that lower/r is not in upper: a whiteout, unless nothing
// visible was there.
func (d *copyDiffer) deleted(r string, ensure func() error) error {
	var lst unix.Stat_t
	if err := unix.Lstat(filepath.Join(d.lower, r), &lst); err != nil {
		return err
	}
	if archive.IsWhiteout(&lst) || lst.Mode&unix.S_IFMT == unix.S_IFSOCK {
		return nil
	}
	if err := ensure(); err != nil {
		return err
	}
	p := filepath.Join(d.out, r)
	if err := unix.Mknod(p, unix.S_IFCHR, 0); err != nil {
		return &os.PathError{Op: "mknod whiteout", Path: p, Err: err}
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
		name := archive.OpaqueXattr(d.userXattr)
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
	names, err := archive.ListXattrs(p, &d.xbuf)
	if err != nil {
		return "", err
	}
	slices.Sort(names)
	var b strings.Builder
	for _, n := range names {
		if archive.IsOverlayXattr(n) {
			continue
		}
		v, err := archive.GetXattr(p, n, &d.xbuf)
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
