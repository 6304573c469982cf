//go:build linux

package archive

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// WriteDiff writes the overlay upper directory dir to w as an uncompressed
// OCI layer tar.
//
// Entries come in depth-first order, each directory's entries sorted by
// their name in the tar (the order filepath.WalkDir uses), so a directory
// always precedes its contents. Names are relative, without "./", and
// directories end in "/". The root directory itself is not written.
//
//   - a 0/0 character device (overlay whiteout) becomes an empty regular
//     file .wh.<name>;
//   - a directory with the overlay opaque xattr (trusted or user namespace)
//     is followed by a <dir>/.wh..wh..opq entry;
//   - files sharing an inode are written once, later paths as hard links to
//     the first (whiteouts excluded: overlay shares one inode among them);
//   - ownership, permission bits (with setuid, setgid, sticky), mtime and
//     file capabilities (security.capability, the one xattr a layer
//     carries: see addXattrs) come from the files; user and group names,
//     atime and ctime are not written; sockets are skipped.
//
// Headers use the PAX format, so sub-second mtimes and long names survive;
// the output depends only on the tree, so identical trees give identical
// bytes.
func WriteDiff(ctx context.Context, dir string, w io.Writer, opts DiffOptions) error {
	d := &differ{
		ctx:   ctx,
		tw:    tar.NewWriter(w),
		opts:  opts,
		links: map[devIno]string{},
		buf:   make([]byte, 128<<10),
		xbuf:  make([]byte, 4096),
	}
	root := entryFile{dir: unix.AT_FDCWD, name: dir, path: dir, fd: -1}
	if err := root.open(unix.O_DIRECTORY); err != nil {
		return fmt.Errorf("writing diff: %w", err)
	}
	defer root.close()
	if err := d.walk(root.fd, dir, ""); err != nil {
		return err
	}
	if err := d.tw.Close(); err != nil {
		return fmt.Errorf("writing diff of %s: %w", dir, err)
	}
	return nil
}

type differ struct {
	ctx   context.Context
	tw    *tar.Writer
	opts  DiffOptions
	links map[devIno]string
	buf   []byte
	xbuf  []byte
	// depth is how many directories below the root the walk is.
	depth int
}

// diffEntry is one directory entry with its stat and its name in the tar.
type diffEntry struct {
	name    string // on disk
	tarName string // .wh.<name> for whiteouts
	st      unix.Stat_t
	// regular: the directory listed it as a regular file, not yet
	// stat'ed (openRegular does both).
	regular bool
}

// IsWhiteout reports whether st is an overlay whiteout: a 0/0 character
// device.
func IsWhiteout(st *unix.Stat_t) bool {
	return st.Mode&unix.S_IFMT == unix.S_IFCHR && st.Rdev == 0
}

// walk writes the contents of the directory open at fd, abs on the host,
// whose tar name is rel ("" for the root). Entries are reached by name
// from their open directory, not by their full path, which saves a path
// lookup per file in a deep tree.
func (d *differ) walk(fd int, abs, rel string) error {
	entries, err := listEntries(fd, abs)
	if err != nil {
		return err
	}
	slices.SortFunc(entries, func(a, b diffEntry) int { return strings.Compare(a.tarName, b.tarName) })

	for i := range entries {
		if err := d.ctx.Err(); err != nil {
			return err
		}
		e := &entries[i]
		name := e.tarName
		if rel != "" {
			name = rel + "/" + e.tarName
		}
		f := entryFile{dir: fd, name: e.name, path: abs + "/" + e.name, fd: -1}
		err := f.stat(e)
		if err == nil {
			err = d.entry(&f, name, &e.st)
		}
		if err == nil && f.fd >= 0 && e.st.Mode&unix.S_IFMT == unix.S_IFDIR {
			if d.depth >= MaxDepth {
				f.close()
				return fmt.Errorf("writing diff: %s: %w", f.path, ErrTooDeep)
			}
			d.depth++
			err = d.walk(f.fd, f.path, name)
			d.depth--
			if err != nil {
				f.close()
				return err
			}
		}
		f.close()
		if err != nil {
			return fmt.Errorf("writing diff: %s: %w", f.path, err)
		}
	}
	return nil
}

// listEntries lists the directory open at fd with the stat of every entry
// but those it lists as regular files: their names are their tar names,
// and they are stat'ed once open (entryFile.stat), one system call fewer
// per file than a stat before the open and a check after it.
func listEntries(fd int, abs string) ([]diffEntry, error) {
	des, err := readDir(fd, abs)
	if err != nil {
		return nil, fmt.Errorf("writing diff: reading %s: %w", abs, err)
	}
	entries := make([]diffEntry, 0, len(des))
	for _, de := range des {
		n := de.Name()
		e := diffEntry{name: n, tarName: n}
		if de.Type().IsRegular() {
			e.regular = true
			entries = append(entries, e)
			continue
		}
		if err := unix.Fstatat(fd, n, &e.st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return nil, fmt.Errorf("writing diff: %w", &os.PathError{Op: "lstat", Path: abs + "/" + n, Err: err})
		}
		if IsWhiteout(&e.st) {
			e.tarName = WhiteoutPrefix + n
		}
		entries = append(entries, e)
	}
	return entries, nil
}

// readDir lists the directory open at fd, with the types of its entries.
func readDir(fd int, abs string) ([]fs.DirEntry, error) {
	dup, err := unix.Dup(fd)
	if err != nil {
		return nil, &os.PathError{Op: "dup", Path: abs, Err: err}
	}
	f := os.NewFile(uintptr(dup), abs)
	defer f.Close()
	return f.ReadDir(-1)
}

// entryFile is an entry of a directory open at dir: opened (fd) only
// when its contents or xattrs are read, and then through the descriptor.
type entryFile struct {
	dir        int
	name, path string
	fd         int
}

// open opens the entry, not following a symlink.
func (f *entryFile) open(flags int) error {
	fd, err := unix.Openat(f.dir, f.name, flags|unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return &os.PathError{Op: "open", Path: f.path, Err: err}
	}
	f.fd = fd
	return nil
}

// stat fills in e.st: for an entry listed as a regular file, by opening
// it (non-blocking, not following a symlink) and stat'ing the descriptor,
// which stays open in f for its contents and xattrs, so the stat is of
// what is read. An entry that is no longer a regular file is stat'ed by
// name, as any other.
func (f *entryFile) stat(e *diffEntry) error {
	if !e.regular {
		return nil
	}
	fd, err := unix.Openat(f.dir, f.name, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err == nil {
		if err = unix.Fstat(fd, &e.st); err != nil {
			unix.Close(fd)
			return &os.PathError{Op: "fstat", Path: f.path, Err: err}
		}
		if e.st.Mode&unix.S_IFMT == unix.S_IFREG {
			f.fd = fd
			return nil
		}
		unix.Close(fd)
	} else if !errors.Is(err, unix.ELOOP) && !errors.Is(err, unix.ENXIO) {
		return &os.PathError{Op: "open", Path: f.path, Err: err}
	}
	// Replaced since the listing (by a symlink: ELOOP; a socket: ENXIO).
	if err := unix.Fstatat(f.dir, f.name, &e.st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "lstat", Path: f.path, Err: err}
	}
	return nil
}

func (f *entryFile) close() {
	if f.fd >= 0 {
		unix.Close(f.fd)
		f.fd = -1
	}
}

func (d *differ) mtime(st *unix.Stat_t) time.Time {
	if d.opts.ZeroTimes {
		return time.Unix(0, 0).UTC()
	}
	t := time.Unix(st.Mtim.Unix()).UTC()
	if e := d.opts.SourceDateEpoch; e != nil && t.After(*e) {
		t = e.UTC()
	}
	return t
}

// entry writes the header (and content) of the file f, named name. A
// directory is left open in f for the walk into it.
func (d *differ) entry(f *entryFile, name string, st *unix.Stat_t) error {
	hdr := &tar.Header{
		Name:    name,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     int(st.Uid),
		Gid:     int(st.Gid),
		ModTime: d.mtime(st),
		Format:  tar.FormatPAX,
	}
	if IsWhiteout(st) {
		hdr.Typeflag = tar.TypeReg
		hdr.Mode &= 0o777
		return d.tw.WriteHeader(hdr)
	}
	isDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
	if !isDir && st.Nlink > 1 {
		k := devIno{uint64(st.Dev), st.Ino}
		if first, ok := d.links[k]; ok {
			hdr.Typeflag = tar.TypeLink
			hdr.Linkname = first
			return d.tw.WriteHeader(hdr)
		}
		d.links[k] = name
	}
	if ok, err := setType(hdr, f, st); err != nil || !ok {
		return err
	}
	// A directory is opened for the walk, a file with contents to read
	// them: their xattrs are read through the descriptor too.
	switch {
	case isDir:
		if err := f.open(unix.O_DIRECTORY); err != nil {
			return err
		}
	case hdr.Typeflag == tar.TypeReg && hdr.Size > 0 && f.fd < 0:
		fd, err := OpenRegularAt(f.dir, f.name, f.path, st)
		if err != nil {
			return err
		}
		f.fd = fd
	}
	opaque, err := d.addXattrs(hdr, f, isDir)
	if err != nil {
		return err
	}
	if err := d.tw.WriteHeader(hdr); err != nil {
		return err
	}
	if opaque {
		// The marker takes the directory's time and no owner, so that it
		// changes only when the directory does.
		if err := d.tw.WriteHeader(&tar.Header{
			Typeflag: tar.TypeReg,
			Name:     hdr.Name + WhiteoutOpaque,
			ModTime:  hdr.ModTime,
			Format:   tar.FormatPAX,
		}); err != nil {
			return err
		}
	}
	if hdr.Typeflag == tar.TypeReg && hdr.Size > 0 {
		return d.copyFile(f, hdr.Size)
	}
	return nil
}

// setType fills in hdr's type and what goes with it (size, link target,
// device numbers) for the file f. It reports false for a socket, which
// a tar cannot hold (they are runtime state anyway).
func setType(hdr *tar.Header, f *entryFile, st *unix.Stat_t) (bool, error) {
	fmtBits := st.Mode & unix.S_IFMT
	switch fmtBits {
	case unix.S_IFREG:
		hdr.Typeflag = tar.TypeReg
		hdr.Size = st.Size
	case unix.S_IFDIR:
		hdr.Typeflag = tar.TypeDir
		hdr.Name += "/"
	case unix.S_IFLNK:
		hdr.Typeflag = tar.TypeSymlink
		target, err := readlinkAt(f)
		if err != nil {
			return false, err
		}
		hdr.Linkname = target
	case unix.S_IFIFO:
		hdr.Typeflag = tar.TypeFifo
	case unix.S_IFCHR, unix.S_IFBLK:
		hdr.Typeflag = tar.TypeChar
		if fmtBits == unix.S_IFBLK {
			hdr.Typeflag = tar.TypeBlock
		}
		hdr.Devmajor = int64(unix.Major(uint64(st.Rdev)))
		hdr.Devminor = int64(unix.Minor(uint64(st.Rdev)))
	case unix.S_IFSOCK:
		return false, nil
	default:
		return false, fmt.Errorf("unknown file type %#o", fmtBits)
	}
	return true, nil
}

// addXattrs records in hdr the one xattr a layer carries,
// security.capability, and reports whether the directory f is opaque.
// BuildKit v0.34.2's layers hold only that one (conformance case
// run_xattrs): user.* and POSIX ACLs a RUN step sets are left out, and
// the host's own (security.selinux labels, trusted.*, IMA signatures)
// would make a layer's digest depend on the host that built it.
func (d *differ) addXattrs(hdr *tar.Header, f *entryFile, isDir bool) (opaque bool, err error) {
	x := xattrsOf(f)
	names, err := x.list(&d.xbuf)
	if err != nil {
		return false, err
	}
	for _, n := range names {
		opq := isDir && (n == TrustedOpaque || n == UserOpaque)
		if !opq && n != CapabilityXattr {
			continue
		}
		v, err := x.get(n, &d.xbuf)
		if errors.Is(err, unix.ENODATA) {
			continue // removed since listing
		}
		if err != nil {
			return false, err
		}
		if opq {
			opaque = opaque || v == "y"
			continue
		}
		hdr.PAXRecords = map[string]string{PAXXattr + n: v}
	}
	return opaque, nil
}

// copyFile writes exactly size bytes of the open file f; a file that
// changed size since it was stat'ed is an error, not a corrupt tar.
func (d *differ) copyFile(f *entryFile, size int64) error {
	n, err := io.CopyBuffer(d.tw, io.LimitReader(FdReader{FD: f.fd, Path: f.path}, size), d.buf)
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("file shrank from %d to %d bytes while being read", size, n)
	}
	return nil
}

// devIno identifies an inode, for finding the other names of a hard link.
type devIno struct{ dev, ino uint64 }
