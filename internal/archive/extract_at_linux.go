//go:build linux

package archive

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"

	"github.com/builder-dev/builder/internal/fdfile"
	"golang.org/x/sys/unix"
)

// The extractor's hot path: an entry is made relative to its parent held
// open, exclusively (EEXIST, then what is there is replaced), and a file's
// metadata set through its descriptor, leaving out the chown and chmod the
// kernel made needless: 4-5 system calls an entry, not about 17 (8 stat).

// maxOpenDirs bounds the parent directories held open at once. Layers list
// a directory's entries together, so a few suffice; past it all are closed.
const maxOpenDirs = 64

// writeBackMin is the size from which a file's write-out starts as soon as
// it is written (smaller files are left to the final syncfs in a batch).
const writeBackMin = 64 << 10

// dirAt is a parent directory held open, under the path it was resolved
// to. It stays valid while nothing is removed and no symlink or hard link
// is made in the extraction (see extractor.stale).
type dirAt struct {
	fdfile.Dir
	path string
}

// parentAt returns the directory that holds the clean relative name rel
// (not "."), resolved inside the root as resolve does (missing parents
// made), held open.
func (x *extractor) parentAt(rel string) (*dirAt, error) {
	if x.stale {
		x.closeDirs()
	}
	dirRel := path.Dir(rel)
	if d := x.open[dirRel]; d != nil {
		return d, nil
	}
	d, err := x.openDir(dirRel)
	if err != nil {
		return nil, err
	}
	if len(x.open) >= maxOpenDirs {
		x.closeDirs()
	}
	x.open[dirRel] = d
	return d, nil
}

// openDir opens the directory the clean relative name dirRel resolves to:
// a directory of that name in its parent held open is what resolving
// would find (nothing to follow), else it is resolved from the root, and
// made when missing.
func (x *extractor) openDir(dirRel string) (*dirAt, error) {
	if up := x.open[path.Dir(dirRel)]; up != nil && dirRel != "." {
		name := path.Base(dirRel)
		if d, err := fdfile.OpenDir(up.FD, name); err == nil {
			return &dirAt{d, filepath.Join(up.path, name)}, nil
		}
	}
	parent, err := x.resolveDir(dirRel)
	if err != nil {
		return nil, err
	}
	d, err := fdfile.OpenDir(unix.AT_FDCWD, parent)
	return &dirAt{d, parent}, err
}

// closeDirs closes the directories held open. Removing an entry, or making
// a symlink or hard link, can change what a name resolves to (a symlink
// where a missing name was taken lexically, a directory gone), so the
// extractor marks them stale and the next entry resolves its parent anew,
// exactly as it would without them.
func (x *extractor) closeDirs() {
	for k, d := range x.open {
		unix.Close(d.FD)
		delete(x.open, k)
	}
	x.stale = false
}

// makeAt runs make, which creates the entry at p exclusively; when
// something is there already, it is replaced (see replace) and make runs
// again, unless it is a directory and the entry one too (exists).
func (x *extractor) makeAt(p string, isDir bool, make func() error) (exists bool, err error) {
	err = make()
	if !errors.Is(err, unix.EEXIST) {
		return false, err
	}
	if exists, err = x.replace(p, isDir); exists || err != nil {
		return exists, err
	}
	return false, make()
}

// createAt writes the entry hdr as name in the directory d (p is its host
// path), replacing what is there.
func (x *extractor) createAt(d *dirAt, name, p string, hdr *tar.Header, r io.Reader) error {
	switch hdr.Typeflag {
	case tar.TypeDir:
		// Owner-writable until finishDirs sets the real mode.
		exists, err := x.makeAt(p, true, func() error { return unix.Mkdirat(d.FD, name, 0o700) })
		if err != nil {
			return &os.PathError{Op: "mkdir", Path: p, Err: err}
		}
		x.dirs[p] = hdr
		if exists {
			delete(x.madeDirs, p)
		} else {
			x.madeDirs[p] = d.GID == x.gid
		}
		return nil
	case tar.TypeReg, tar.TypeGNUSparse:
		// The tar reader expands sparse files to zeros; WriteSparse makes
		// holes of them again.
		if err := x.opts.Expansion.Add(hdr.Size); err != nil {
			return err
		}
		return x.writeFileAt(d, name, p, hdr, r)
	case tar.TypeSymlink:
		x.stale = true
		if _, err := x.makeAt(p, false, func() error { return unix.Symlinkat(hdr.Linkname, d.FD, name) }); err != nil {
			return &os.LinkError{Op: "symlink", Old: hdr.Linkname, New: p, Err: err}
		}
	case tar.TypeLink:
		// A hard link to a symlink is a symlink too.
		x.stale = true
		if _, err := x.replace(p, false); err != nil {
			return err
		}
		// The new name shares the target's inode and so its metadata.
		return x.link(p, hdr.Linkname)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		mode := map[byte]uint32{tar.TypeChar: unix.S_IFCHR, tar.TypeBlock: unix.S_IFBLK, tar.TypeFifo: unix.S_IFIFO}[hdr.Typeflag]
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		if _, err := x.makeAt(p, false, func() error { return unix.Mknodat(d.FD, name, mode|0o600, int(dev)) }); err != nil {
			return &os.PathError{Op: "mknod", Path: p, Err: err}
		}
	}
	return x.metadataAt(d, name, p, hdr)
}

// writeFileAt writes the regular file hdr as name in d, through a bare
// descriptor, and applies its metadata.
func (x *extractor) writeFileAt(d *dirAt, name, p string, hdr *tar.Header, r io.Reader) error {
	perm := uint32(hdr.Mode & 0o777)
	fd := -1
	_, err := x.makeAt(p, false, func() (err error) {
		fd, err = unix.Openat(d.FD, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
		return err
	})
	if err != nil {
		return &os.PathError{Op: "open", Path: p, Err: err}
	}
	n, w, err := fdfile.WriteSparse(fdfile.File{FD: fd, Path: p}, r, x.buf)
	x.res.Size += n
	x.res.Written += w
	if w >= writeBackMin {
		// Start writing it out now, so that the syncfs that makes the
		// tree durable (snapshot Commit) finds little left to write.
		// Advisory: an error here changes nothing that syncfs checks.
		_ = unix.SyncFileRange(fd, 0, 0, unix.SYNC_FILE_RANGE_WRITE)
	}
	if cerr := unix.Close(fd); err == nil && cerr != nil {
		err = &os.PathError{Op: "close", Path: p, Err: cerr}
	}
	if err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	return x.metadataAt(d, name, p, hdr)
}

// owner is the owner hdr's entry gets, and whether it is set at all.
func (x *extractor) owner(hdr *tar.Header) (uid, gid int, set bool) {
	if x.opts.NoLchown {
		return 0, 0, false
	}
	if o := x.opts.Owner; o != nil {
		return o.UID, o.GID, true
	}
	return hdr.Uid, hdr.Gid, true
}

// metadataAt applies ownership, mode, xattrs and times (in metadata's
// order) to the entry name just made in d. The owner is left when it is
// the one the kernel gave the new entry; a regular file's mode too, when
// neither the umask nor a default ACL took bits off the mode it was made
// with.
func (x *extractor) metadataAt(d *dirAt, name, p string, hdr *tar.Header) error {
	if uid, gid, set := x.owner(hdr); set && !(uid == x.uid && gid == x.gid && d.GID == x.gid) {
		if err := unix.Fchownat(d.FD, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return &os.PathError{Op: "lchown", Path: p, Err: err}
		}
	}
	mode := uint32(hdr.Mode & 0o7777)
	file := hdr.Typeflag == tar.TypeReg || hdr.Typeflag == tar.TypeGNUSparse
	if made := file && !d.DefaultACL && x.umask >= 0 && mode&^0o777 == 0 && mode&uint32(x.umask) == 0; !made && hdr.Typeflag != tar.TypeSymlink {
		// The raw bits, so setuid, setgid and sticky carry over as they
		// are in the tar (the chown above cleared setuid and setgid).
		if err := unix.Fchmodat(d.FD, name, mode, 0); err != nil {
			return &os.PathError{Op: "chmod", Path: p, Err: err}
		}
	}
	if err := x.setXattrs(p, hdr); err != nil {
		return err
	}
	if err := unix.UtimesNanoAt(d.FD, name, entryTimes(hdr), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "utimensat", Path: p, Err: err}
	}
	return nil
}
