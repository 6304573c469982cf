//go:build linux

package archive

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/builder-dev/builder/internal/fdfile"
	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
)

// Extract unpacks the tar tr into the existing directory dir, as `tar -x`
// would with dir as its root.
//
// Nothing is written outside dir: absolute names are taken relative to
// dir, names whose ".." would climb out of dir are rejected, and every
// parent directory is resolved inside dir, following symlinks the tar
// itself created as if dir were "/" (github.com/cyphar/filepath-securejoin),
// as BuildKit's chrooted untar does: "l -> /etc" then "l/passwd" writes
// dir/etc/passwd. The final component of a name is never followed. Hard
// link targets are resolved the same way. This relies on Extract being the
// only writer of dir while it runs.
//
// A later entry for a path replaces an earlier one or what was there (a
// directory replacing a directory keeps its contents). Missing parents are
// created 0755. Owners, permissions (setuid, setgid and sticky included),
// times, symlinks, hard links, device nodes and PAX xattrs are applied;
// directories get their metadata after their contents are written. xattrs
// the filesystem refuses (ENOTSUP, EPERM) are skipped and listed in the
// result, except security.capability when running as root, which fails the
// extraction rather than silently dropping a file capability. Overlay's own
// xattrs in the tar are ignored: only .wh..wh..opq (with opts.Whiteouts)
// may make a directory opaque. Entry types other than files, directories,
// links and device nodes are refused before anything is written for them.
//
// An error names the entry it happened at.
func Extract(ctx context.Context, dir string, tr *tar.Reader, opts Options) (Result, error) {
	root, err := filepath.Abs(dir)
	if err != nil {
		return Result{}, err
	}
	x := &extractor{root: root, opts: opts, dirs: map[string]*tar.Header{}, implicit: map[string]bool{}, buf: make([]byte, 128<<10),
		open: map[string]*dirAt{}, madeDirs: map[string]bool{}, uid: os.Geteuid(), gid: os.Getegid(), umask: fdfile.Umask()}
	defer x.closeDirs()
	for {
		if err := ctx.Err(); err != nil {
			return x.res, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return x.res, fmt.Errorf("reading tar: %w", err)
		}
		if err := x.entry(hdr, tr); err != nil {
			return x.res, fmt.Errorf("entry %q: %w", hdr.Name, err)
		}
	}
	if err := x.finishDirs(); err != nil {
		return x.res, err
	}
	// A later entry may have listed an implicit directory, or replaced it
	// or a parent, even with a symlink ("a/bin/x", then "a -> /usr"):
	// through which the caller, changing a/bin, would change /usr/bin.
	var rels []string
	for p := range x.implicit {
		if x.dirs[p] == nil {
			rel, _ := filepath.Rel(root, p)
			rels = append(rels, rel)
		}
	}
	x.res.ImplicitDirs, err = fdfile.DirsBeneath(root, rels)
	return x.res, err
}

type extractor struct {
	root string
	opts Options
	res  Result
	// dirs holds the header of every directory written, by resolved path;
	// their metadata is applied at the end, because writing entries into a
	// directory changes its mtime, and a read-only mode would stop us
	// writing them (without CAP_DAC_OVERRIDE).
	dirs map[string]*tar.Header
	// implicit holds the directories made because an entry's parents
	// were missing, by resolved path.
	implicit map[string]bool
	buf      []byte
	// open holds parent directories open by clean relative name (see
	// parentAt); stale says they must be resolved again.
	open  map[string]*dirAt
	stale bool
	// madeDirs holds the directories made by this extraction, by resolved
	// path, set when the kernel gave them the extractor's owner.
	madeDirs map[string]bool
	// uid and gid own what the extractor makes; umask is the process's
	// (-1 when unknown).
	uid, gid, umask int
}

// cleanName turns a tar name into a clean path relative to the root of the
// extraction, "." for the root itself. A name whose ".." climbs above the
// root is an error; a rooted one cannot climb ("/../x" is "x").
func cleanName(name string) (string, error) {
	if strings.ContainsRune(name, 0) {
		return "", errors.New("name contains NUL")
	}
	if c := path.Clean(name); c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("name %q points outside the destination", name)
	}
	c := strings.TrimPrefix(path.Clean("/"+name), "/")
	if c == "" {
		return ".", nil
	}
	return c, nil
}

// resolve returns the host path for the clean relative name rel: its parent
// resolved inside the root (creating missing directories), its last
// component appended unresolved.
func (x *extractor) resolve(rel string) (string, error) {
	if rel == "." {
		return x.root, nil
	}
	parent, err := x.resolveDir(path.Dir(rel))
	if err != nil {
		return "", err
	}
	return filepath.Join(parent, path.Base(rel)), nil
}

// resolveDir resolves the clean relative directory name rel inside the
// root and makes it and its missing parents.
func (x *extractor) resolveDir(rel string) (string, error) {
	dir, err := securejoin.SecureJoin(x.root, rel)
	if err != nil {
		return "", fmt.Errorf("resolving %q: %w", rel, err)
	}
	if err := x.mkdirAll(dir); err != nil {
		return "", err
	}
	return dir, nil
}

// mkdirAll creates the missing directories of p (which SecureJoin has
// resolved, so no existing component is a symlink) with mode 0755, owned
// by opts.Owner when set.
func (x *extractor) mkdirAll(p string) error {
	fi, err := os.Lstat(p)
	if err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("parent %s is not a directory", p)
		}
		return nil
	}
	if !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if p == x.root {
		return fmt.Errorf("destination %s: %w", p, err)
	}
	if err := x.mkdirAll(filepath.Dir(p)); err != nil {
		return err
	}
	if err := os.Mkdir(p, 0o755); err != nil {
		return err
	}
	x.implicit[p] = true
	// Mkdir is subject to the umask.
	if err := os.Chmod(p, 0o755); err != nil {
		return err
	}
	if o := x.opts.Owner; o != nil && !x.opts.NoLchown {
		return os.Lchown(p, o.UID, o.GID)
	}
	return nil
}

// replace makes way for a new entry at p: an existing directory stays when
// the new entry is a directory too, anything else is removed.
func (x *extractor) replace(p string, isDir bool) (exists bool, err error) {
	fi, err := os.Lstat(p)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if !fi.IsDir() {
		x.stale = true
		return false, os.Remove(p)
	}
	if isDir {
		return true, nil
	}
	if p == x.root {
		return false, errors.New("cannot replace the destination with a non-directory")
	}
	for d := range x.dirs {
		if d == p || strings.HasPrefix(d, p+"/") {
			delete(x.dirs, d)
		}
	}
	for d := range x.implicit {
		if d == p || strings.HasPrefix(d, p+"/") {
			delete(x.implicit, d)
		}
	}
	x.stale = true
	return false, RemoveAll(p)
}

// supported lists the entry types Extract writes.
func supported(typ byte) bool {
	switch typ {
	case tar.TypeDir, tar.TypeReg, tar.TypeGNUSparse, tar.TypeSymlink, tar.TypeLink,
		tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		return true
	}
	return false
}

func (x *extractor) entry(hdr *tar.Header, r io.Reader) error {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		// PAX global records (e.g. git archive's comment) describe no file.
		return nil
	}
	rel, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	if rel != "." && x.opts.Exclude != nil && x.opts.Exclude(rel) {
		return nil
	}
	if x.opts.Whiteouts && strings.HasPrefix(path.Base(rel), WhiteoutPrefix) {
		return x.whiteout(rel, hdr)
	}
	if !supported(hdr.Typeflag) {
		// Checked before touching the tree, so an unknown entry changes
		// nothing.
		return fmt.Errorf("unsupported tar entry type %q", hdr.Typeflag)
	}
	if rel == "." {
		if hdr.Typeflag != tar.TypeDir {
			return errors.New("it would replace the destination directory with a non-directory")
		}
		if !x.opts.KeepDestination {
			x.dirs[x.root] = hdr
		}
		return nil
	}
	d, err := x.parentAt(rel)
	if err != nil {
		return err
	}
	name := path.Base(rel)
	return x.createAt(d, name, filepath.Join(d.path, name), hdr, r)
}

// whiteout handles an OCI whiteout entry rel (its base name starts with
// .wh.): an opaque marker, AUFS metadata, or a whiteout of one name.
func (x *extractor) whiteout(rel string, hdr *tar.Header) error {
	base := path.Base(rel)
	switch {
	case base == WhiteoutOpaque:
		// The directory itself is resolved too: if it is a symlink, the
		// marker applies to (and stays within) what it points to.
		p, err := securejoin.SecureJoin(x.root, path.Dir(rel))
		if err != nil {
			return fmt.Errorf("resolving %q: %w", path.Dir(rel), err)
		}
		if err := x.mkdirAll(p); err != nil {
			return err
		}
		name := OpaqueXattr(x.opts.UserXattr)
		if err := unix.Lsetxattr(p, name, []byte("y"), 0); err != nil {
			return &os.PathError{Op: "lsetxattr " + name, Path: p, Err: err}
		}
		return nil
	case strings.HasPrefix(base, WhiteoutMeta):
		// AUFS bookkeeping (.wh..wh.plnk and friends): not files.
		return nil
	}
	name := base[len(WhiteoutPrefix):]
	if name == "" || name == "." || name == ".." {
		return errors.New("invalid whiteout name")
	}
	p, err := x.resolve(path.Join(path.Dir(rel), name))
	if err != nil {
		return err
	}
	if _, err := x.replace(p, false); err != nil {
		return err
	}
	if err := unix.Mknod(p, unix.S_IFCHR, 0); err != nil {
		return &os.PathError{Op: "mknod whiteout", Path: p, Err: err}
	}
	// Keep the entry's time, so that WriteDiff of this directory
	// reproduces the layer.
	return setTimes(p, hdr)
}

func (x *extractor) link(p, target string) error {
	rel, err := cleanName(target)
	if err != nil {
		return fmt.Errorf("hard link target: %w", err)
	}
	if rel == "." {
		return errors.New("hard link to the destination directory")
	}
	src, err := x.resolve(rel)
	if err != nil {
		return fmt.Errorf("hard link target: %w", err)
	}
	fi, err := os.Lstat(src)
	if err != nil {
		return fmt.Errorf("hard link target %q: %w", target, err)
	}
	if fi.IsDir() {
		return fmt.Errorf("hard link target %q is a directory", target)
	}
	// linkat without AT_SYMLINK_FOLLOW: a symlink target is linked itself,
	// never followed.
	if err := unix.Linkat(unix.AT_FDCWD, src, unix.AT_FDCWD, p, 0); err != nil {
		return &os.LinkError{Op: "hard link", Old: src, New: p, Err: err}
	}
	return nil
}

// metadata applies ownership, mode, xattrs and times to the directory p,
// in that order: chown clears setuid/setgid bits and security.capability,
// so it goes first. The owner is left alone when this extraction made the
// directory and the kernel gave it that owner.
func (x *extractor) metadata(p string, hdr *tar.Header) error {
	if uid, gid, set := x.owner(hdr); set && !(x.madeDirs[p] && uid == x.uid && gid == x.gid) {
		if err := os.Lchown(p, uid, gid); err != nil {
			return err
		}
	}
	if hdr.Typeflag != tar.TypeSymlink {
		// unix.Chmod takes the raw bits, so setuid, setgid and sticky
		// carry over as they are in the tar.
		if err := unix.Chmod(p, uint32(hdr.Mode&0o7777)); err != nil {
			return &os.PathError{Op: "chmod", Path: p, Err: err}
		}
	}
	if err := x.setXattrs(p, hdr); err != nil {
		return err
	}
	return setTimes(p, hdr)
}

// setTimes sets p's mtime (and atime, defaulting to the mtime) from hdr,
// without following a symlink.
func setTimes(p string, hdr *tar.Header) error {
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, entryTimes(hdr), unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "utimensat", Path: p, Err: err}
	}
	return nil
}

// entryTimes are hdr's access and modification times for utimensat; the
// access time defaults to the modification time.
func entryTimes(hdr *tar.Header) []unix.Timespec {
	atime := hdr.AccessTime
	if atime.IsZero() {
		atime = hdr.ModTime
	}
	return []unix.Timespec{toTimespec(atime), toTimespec(hdr.ModTime)}
}

func toTimespec(t time.Time) unix.Timespec {
	if t.IsZero() {
		// The Unix epoch, rather than year 1, which the kernel may reject.
		return unix.Timespec{}
	}
	return unix.NsecToTimespec(t.UnixNano())
}

func (x *extractor) setXattrs(p string, hdr *tar.Header) error {
	var names []string
	for k := range hdr.PAXRecords {
		if n, ok := strings.CutPrefix(k, PAXXattr); ok && !IsOverlayXattr(n) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		err := unix.Lsetxattr(p, n, []byte(hdr.PAXRecords[PAXXattr+n]), 0)
		if err == nil {
			continue
		}
		if n == "security.capability" && errors.Is(err, unix.EINVAL) {
			return CapabilityError(p, err)
		}
		if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EPERM) {
			if n == "security.capability" && os.Geteuid() == 0 {
				return fmt.Errorf("setting file capability (xattr %s) on %s: %w; the image would lose a capability its program needs", n, p, err)
			}
			x.res.SkippedXattrs = append(x.res.SkippedXattrs, p+": "+n)
			continue
		}
		return &os.PathError{Op: "lsetxattr " + n, Path: p, Err: err}
	}
	return nil
}

// finishDirs applies directory metadata, deepest first, so that a
// directory made read-only does not block its children's.
func (x *extractor) finishDirs() error {
	paths := make([]string, 0, len(x.dirs))
	for p := range x.dirs {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range slices.Backward(paths) {
		if err := x.metadata(p, x.dirs[p]); err != nil {
			return fmt.Errorf("directory %s: %w", p, err)
		}
	}
	return nil
}
