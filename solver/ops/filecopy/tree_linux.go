//go:build linux

package filecopy

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/builder-dev/builder/internal/archive"
	"github.com/builder-dev/builder/internal/fdfile"
	"github.com/builder-dev/builder/llb"
	"github.com/builder-dev/builder/source/localctx"
	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"
)

// dir is a directory open for a copy, on either side: its descriptor and
// host path (for errors, hard links and removing a replaced directory).
//
// A tree is copied through descriptors, one name at a time: each
// directory is opened relative to its parent with O_NOFOLLOW, and every
// entry is made, opened or changed by its name relative to an open
// directory, never followed if it is a symlink. So nothing in the source
// or the destination can lead the copy outside either root, without
// resolving a path from the root for every file, and without a path
// lookup per file.
type dir struct {
	fd   int
	path string
}

func openDir(p string) (dir, error) {
	fd, err := unix.Open(p, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return dir{fd: -1}, &os.PathError{Op: "open", Path: p, Err: err}
	}
	return dir{fd: fd, path: p}, nil
}

// child opens the directory name of d, not following a symlink.
func (d dir) child(name string) (dir, error) {
	p := d.path + "/" + name
	fd, err := unix.Openat(d.fd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return dir{fd: -1}, &os.PathError{Op: "open", Path: p, Err: err}
	}
	return dir{fd: fd, path: p}, nil
}

func (d dir) close() {
	if d.fd >= 0 {
		unix.Close(d.fd)
	}
}

// entries lists d's entries sorted by name (the order of os.ReadDir, so
// the first of several hard links is the same one every time).
func (d dir) entries() ([]fs.DirEntry, error) {
	fd, err := unix.Dup(d.fd)
	if err != nil {
		return nil, &os.PathError{Op: "dup", Path: d.path, Err: err}
	}
	f := os.NewFile(uintptr(fd), d.path)
	defer f.Close()
	es, err := f.ReadDir(-1)
	if err != nil {
		return nil, err
	}
	slices.SortFunc(es, func(a, b fs.DirEntry) int { return strings.Compare(a.Name(), b.Name()) })
	return es, nil
}

// copyDirInto copies the contents of the host directory src (rel in the
// tree) into the directory into of the root; fresh says into was just
// made.
func (c *copier) copyDirInto(src, rel, into string, fresh bool) error {
	from, err := openDir(src)
	if err != nil {
		return err
	}
	defer from.close()
	p, err := securejoin.SecureJoin(c.root, into)
	if err != nil {
		return err
	}
	to, err := openDir(p)
	if err != nil {
		return err
	}
	defer to.close()
	return c.copyDirContents(from, to, rel, "", into, fresh)
}

// copyFile copies the host file src (m.rel in the tree, symlinks resolved)
// to target in the root.
func (c *copier) copyFile(src, rel, target string) error {
	from, err := openDir(filepath.Dir(src))
	if err != nil {
		return err
	}
	defer from.close()
	to, err := c.openParent(target)
	if err != nil {
		return err
	}
	defer to.close()
	name := filepath.Base(src)
	var st unix.Stat_t
	if err := unix.Fstatat(from.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "lstat", Path: src, Err: err}
	}
	return c.copyEntryAt(from, name, to, path.Base(target), &st, rel, path.Base(rel), target, false)
}

// writeInline writes a COPY heredoc document to rel.
func (c *copier) writeInline(f llb.InlineFile, rel string) error {
	to, err := c.openParent(rel)
	if err != nil {
		return err
	}
	defer to.close()
	name := path.Base(rel)
	// An existing directory stays, and the file cannot be made.
	if err := c.clear(to, name, true); err != nil {
		return err
	}
	out, err := createAt(to, name, 0o600)
	if err != nil {
		return err
	}
	_, err = out.WriteString(f.Data)
	if err == nil {
		err = c.setAttrsAt(to, name, int(out.Fd()), fs.FileMode(f.Mode), time.Now().UnixNano(), c.uid, c.gid)
	}
	return closeFile(out, err)
}

// closeFile closes a file written by the copy and returns err, or the
// close's error: on NFS or FUSE a write may fail only there (ENOSPC, EIO).
func closeFile(f *os.File, err error) error {
	if cerr := f.Close(); err == nil && cerr != nil {
		return fmt.Errorf("writing %s: %w", f.Name(), cerr)
	}
	return err
}

// openParent opens the directory of rel, resolved in the root.
func (c *copier) openParent(rel string) (dir, error) {
	p, err := c.resolve(rel)
	if err != nil {
		return dir{fd: -1}, err
	}
	return openDir(filepath.Dir(p))
}

// copyEntryAt copies the entry srcName of the directory from to rel in
// the root, named name in the directory to, replacing what is there unless
// both are directories. srcRel is the entry relative to the tree, exRel
// relative to the source being copied. fresh says to was made empty by
// this copy, so nothing is in the way.
func (c *copier) copyEntryAt(from dir, srcName string, to dir, name string, st *unix.Stat_t, srcRel, exRel, rel string, fresh bool) error {
	if !fresh {
		if err := c.clear(to, name, st.Mode&unix.S_IFMT == unix.S_IFDIR); err != nil {
			return err
		}
	}
	dstPath := to.path + "/" + name
	fd := -1
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		sub, err := c.copyDirAt(from, srcName, to, name, srcRel, exRel, rel)
		if err != nil {
			return err
		}
		defer sub.close()
		fd = sub.fd
	case unix.S_IFREG:
		if first, ok := c.hardlinkSource(st, dstPath); ok {
			if err := unix.Linkat(unix.AT_FDCWD, first, to.fd, name, 0); err != nil {
				return &os.LinkError{Op: "link", Old: first, New: dstPath, Err: err}
			}
			// The inode has its owner, mode, times and xattrs from the
			// first copy: a chown now would clear its capability.
			return checkStat(c.expect, exRel, st, "")
		}
		return c.copyRegular(from, srcName, to, name, st, nil, exRel)
	case unix.S_IFLNK:
		target, err := archive.ReadlinkAt(from.fd, srcName, from.path+"/"+srcName)
		if err != nil {
			return err
		}
		if err := checkStat(c.expect, exRel, st, target); err != nil {
			return err
		}
		if err := unix.Symlinkat(target, to.fd, name); err != nil {
			return &os.PathError{Op: "symlink", Path: dstPath, Err: err}
		}
	default:
		if err := unix.Mknodat(to.fd, name, st.Mode, int(st.Rdev)); err != nil {
			return &os.PathError{Op: "mknod", Path: dstPath, Err: err}
		}
	}
	uid, gid := c.owner(st)
	return c.setAttrsAt(to, name, fd, archive.UnixMode(st.Mode), unix.TimespecToNsec(st.Mtim), uid, gid)
}

// owner is the owner a copy of st gets.
func (c *copier) owner(st *unix.Stat_t) (int, int) {
	if c.keepOwners {
		return int(st.Uid), int(st.Gid)
	}
	return c.uid, c.gid
}

// copyRegular copies the regular file srcName of from to the new file name
// in to, with its attributes. It works through the two directories'
// descriptors only, so it may run on any thread: the walk's thread may be
// in a mount namespace of its own, where paths lead elsewhere.
//
// made, when known, is what a file created in to gets: a file that would
// get its owner or permission bits from the create is not changed again.
// The kept xattrs are set last: a chown or a write clears a capability.
// sub is the file below the source being copied, for checkRead.
func (c *copier) copyRegular(from dir, srcName string, to dir, name string, st *unix.Stat_t, made *creation, sub string) error {
	uid, gid := c.owner(st)
	mode := archive.UnixMode(st.Mode)
	var skip attrsSet
	createPerm := uint32(0o600)
	if made != nil {
		skip.owner = made.uid == uid && made.gid == gid
		if perm, ok := made.keeps(c.perm(mode)); ok {
			createPerm, skip.mode = perm, true
		}
	}
	out, xs, err := copyFileAt(from, srcName, to, name, st, createPerm, c.xattrs, c.expect, sub)
	if err != nil {
		return err
	}
	err = c.setAttrs(to, name, int(out.Fd()), mode, unix.TimespecToNsec(st.Mtim), uid, gid, skip)
	if err == nil {
		err = setXattrs(int(out.Fd()), out.Name(), xs)
	}
	return closeFile(out, err)
}

// clear removes what is at name in d unless it and the entry replacing it
// are both directories (a directory is merged).
func (c *copier) clear(d dir, name string, isDir bool) error {
	var st unix.Stat_t
	err := unix.Fstatat(d.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return &os.PathError{Op: "lstat", Path: d.path + "/" + name, Err: err}
	}
	existingDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
	switch {
	case existingDir && isDir:
		return nil
	case existingDir:
		// d.path was reached by opening each directory with O_NOFOLLOW.
		return os.RemoveAll(d.path + "/" + name)
	}
	if err := unix.Unlinkat(d.fd, name, 0); err != nil {
		return &os.PathError{Op: "unlink", Path: d.path + "/" + name, Err: err}
	}
	return nil
}

// copyDirAt makes (or keeps) the directory name in to and copies the
// source directory srcName of from into it; it returns the new directory
// open, for its attributes to be set after its contents.
func (c *copier) copyDirAt(from dir, srcName string, to dir, name, srcRel, exRel, rel string) (dir, error) {
	if c.depth >= archive.MaxDepth {
		return dir{fd: -1}, fmt.Errorf("%s/%s: %w", from.path, srcName, archive.ErrTooDeep)
	}
	c.depth++
	defer func() { c.depth-- }()
	fresh := true
	if err := unix.Mkdirat(to.fd, name, 0o700); errors.Is(err, unix.EEXIST) {
		fresh = false
	} else if err != nil {
		return dir{fd: -1}, &os.PathError{Op: "mkdir", Path: to.path + "/" + name, Err: err}
	}
	src, err := from.child(srcName)
	if err != nil {
		return dir{fd: -1}, err
	}
	defer src.close()
	dst, err := to.child(name)
	if err != nil {
		return dst, err
	}
	if err := c.copyDirContents(src, dst, srcRel, exRel, rel, fresh); err != nil {
		dst.close()
		return dir{fd: -1}, err
	}
	if err := c.xattrs.copyDirXattrs(src, dst); err != nil {
		dst.close()
		return dir{fd: -1}, err
	}
	return dst, nil
}

// copyDirContents copies the entries of the source directory src into
// dst (rel in the root). srcRel is src relative to the tree (for
// .dockerignore), exRel relative to the source being copied (for
// --exclude); fresh says dst was made empty by this copy.
func (c *copier) copyDirContents(src, dst dir, srcRel, exRel, rel string, fresh bool) error {
	entries, err := src.entries()
	if err != nil {
		return err
	}
	// The regular files are copied after the walk of the directory, in a
	// few batches at once (copyFiles), not each on a goroutine of its own.
	var files []fileJob
	for _, e := range entries {
		if err := c.ctxErr(); err != nil {
			return err
		}
		name := e.Name()
		childRel := path.Join(srcRel, name)
		childEx := path.Join(exRel, name)
		excluded := c.tree.Excluded(childRel) || c.excluded(childEx)
		if excluded {
			// An excluded directory is walked only when a "!dir/keep"
			// exception may bring back something below it.
			if !e.IsDir() || !c.hasExceptions() {
				continue
			}
		}
		if e.Type()&fs.ModeSocket != 0 {
			// Sockets are not copied, as the context checksum leaves
			// them out (and BuildKit skips them).
			continue
		}
		var st unix.Stat_t
		if err := unix.Fstatat(src.fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return &os.PathError{Op: "lstat", Path: src.path + "/" + name, Err: err}
		}
		if c.workers > 1 && !excluded && st.Mode&unix.S_IFMT == unix.S_IFREG && st.Nlink < 2 {
			// What is in the way is removed here, on the walk's thread.
			if !fresh {
				if err := c.clear(dst, name, false); err != nil {
					return err
				}
			}
			files = append(files, fileJob{name: name, sub: childEx, st: st})
			continue
		}
		if !excluded && st.Mode&unix.S_IFMT != unix.S_IFREG && st.Mode&unix.S_IFMT != unix.S_IFLNK {
			if err := checkStat(c.expect, childEx, &st, ""); err != nil {
				return err
			}
		}
		existed := false
		if excluded && !fresh {
			var dst2 unix.Stat_t
			existed = unix.Fstatat(dst.fd, name, &dst2, unix.AT_SYMLINK_NOFOLLOW) == nil
		}
		if err := c.copyEntryAt(src, name, dst, name, &st, childRel, childEx, path.Join(rel, name), fresh); err != nil {
			return err
		}
		if excluded && !existed {
			// As in BuildKit, an excluded directory appears only as the
			// parent of something an exception brings back.
			err := unix.Unlinkat(dst.fd, name, unix.AT_REMOVEDIR)
			if err != nil && !errors.Is(err, unix.ENOTEMPTY) && !errors.Is(err, unix.EEXIST) {
				return &os.PathError{Op: "rmdir", Path: dst.path + "/" + name, Err: err}
			}
		}
	}
	return c.copyFiles(src, dst, files)
}

// copyFiles copies the regular files jobs of src (none with other links)
// to dst, in at most c.workers contiguous batches of about the same cost
// (batches), on goroutines of their own; a batch as small as one file's
// set-up is copied here. The walk runs on a thread locked to the COPY's
// mount namespace: each time it waited for a worker per file (a
// semaphore), the Go runtime parked that thread and woke it again, a
// futex and a thread switch or two per file, an eighth of a 5,000-file
// COPY's CPU time.
func (c *copier) copyFiles(src, dst dir, jobs []fileJob) error {
	if len(jobs) == 0 {
		return nil
	}
	if !c.credsRead {
		c.readCreds()
		c.credsRead = true
	}
	made := c.creationIn(dst)
	parts := batches(jobs, c.workers)
	if len(parts) == 1 {
		return c.copyBatch(src, dst, parts[0], made)
	}
	var g errgroup.Group
	for _, part := range parts {
		g.Go(func() error { return c.copyBatch(src, dst, part, made) })
	}
	return g.Wait()
}

// copyBatch copies jobs in turn, through the two directories' descriptors
// only (it may run on any thread).
func (c *copier) copyBatch(src, dst dir, jobs []fileJob, made *creation) error {
	for i := range jobs {
		if err := c.ctxErr(); err != nil {
			return err
		}
		if err := c.copyRegular(src, jobs[i].name, dst, jobs[i].name, &jobs[i].st, made, jobs[i].sub); err != nil {
			return err
		}
	}
	return nil
}

func (c *copier) ctxErr() error {
	if c.ctx == nil {
		return nil
	}
	return c.ctx.Err()
}

// copyFileAt copies the regular file srcName of from (stat st) to the new
// file name in to (blocks of zeros become holes), and returns the new
// file, open, and the source's xattrs that keep keeps, for the caller to
// set once the owner is (setXattrs). x, when set, checks the file read
// (checkRead, sub below the source being copied).
func copyFileAt(from dir, srcName string, to dir, name string, st *unix.Stat_t, perm uint32, keep xattrKeep, x *localctx.Expect, sub string) (*os.File, []xattr, error) {
	srcPath := from.path + "/" + srcName
	in, err := archive.OpenRegularAt(from.fd, srcName, srcPath, st)
	if err != nil {
		return nil, nil, err
	}
	defer unix.Close(in)
	xs, err := keep.read(in, srcPath, true)
	if err != nil {
		return nil, nil, err
	}
	out, err := createAt(to, name, perm)
	if err != nil {
		return nil, nil, err
	}
	if _, _, err := fdfile.WriteSparse(out, archive.FdReader{FD: in, Path: srcPath}, nil); err != nil {
		out.Close()
		return nil, nil, fmt.Errorf("writing %s: %w", out.Name(), err)
	}
	if err := checkRead(x, sub, in, srcPath); err != nil {
		out.Close()
		return nil, nil, err
	}
	return out, xs, nil
}

// createAt makes the new file name in d, with the permission bits perm
// (less the umask).
func createAt(d dir, name string, perm uint32) (*os.File, error) {
	p := d.path + "/" + name
	fd, err := unix.Openat(d.fd, name, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, perm)
	if err != nil {
		return nil, &os.PathError{Op: "open", Path: p, Err: err}
	}
	return os.NewFile(uintptr(fd), p), nil
}

// setAttrsAt gives the entry name of d (open as fd, or -1) its owner, mode
// (after --chmod) and mtime.
func (c *copier) setAttrsAt(d dir, name string, fd int, mode fs.FileMode, mtime int64, uid, gid int) error {
	return c.setAttrs(d, name, fd, mode, mtime, uid, gid, attrsSet{})
}

// attrsSet says which attributes a new file already has from its create.
type attrsSet struct{ owner, mode bool }

// perm is the permission and special bits a copy of an entry of mode gets
// (after --chmod).
func (c *copier) perm(mode fs.FileMode) fs.FileMode {
	if c.chmod != nil {
		return c.chmod.Apply(mode & (fs.ModeDir | fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky))
	}
	return mode & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
}

// setAttrs is setAttrsAt, less what skip says is set.
func (c *copier) setAttrs(d dir, name string, fd int, mode fs.FileMode, mtime int64, uid, gid int, skip attrsSet) error {
	p := d.path + "/" + name
	var err error
	switch {
	case skip.owner:
	case fd >= 0:
		err = unix.Fchown(fd, uid, gid)
	default:
		err = unix.Fchownat(d.fd, name, uid, gid, unix.AT_SYMLINK_NOFOLLOW)
	}
	if err != nil {
		return &os.PathError{Op: "lchown", Path: p, Err: err}
	}
	if mode&fs.ModeSymlink == 0 && !skip.mode {
		perm := c.perm(mode)
		if fd >= 0 {
			err = unix.Fchmod(fd, syscallMode(perm))
		} else {
			// Not a symlink (and made by this copy): fchmodat follows
			// nothing.
			err = unix.Fchmodat(d.fd, name, syscallMode(perm), 0)
		}
		if err != nil {
			return &os.PathError{Op: "chmod", Path: p, Err: err}
		}
	}
	ts := []unix.Timespec{unix.NsecToTimespec(mtime), unix.NsecToTimespec(mtime)}
	if err := unix.UtimesNanoAt(d.fd, name, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "utimes", Path: p, Err: err}
	}
	return nil
}

// syscallMode is the inverse of archive.UnixMode for the permission and special
// bits, as os.Chmod computes it.
func syscallMode(m fs.FileMode) uint32 {
	o := uint32(m.Perm())
	if m&fs.ModeSetuid != 0 {
		o |= unix.S_ISUID
	}
	if m&fs.ModeSetgid != 0 {
		o |= unix.S_ISGID
	}
	if m&fs.ModeSticky != 0 {
		o |= unix.S_ISVTX
	}
	return o
}
