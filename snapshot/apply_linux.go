//go:build linux

package snapshot

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

	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
)

// Apply reads the uncompressed OCI layer tar r and writes it into dir, a
// fresh snapshot layer directory, in overlay upper format: .wh.<name>
// becomes a 0/0 character device <name>, and .wh..wh..opq marks its
// directory opaque with the overlay xattr (user.overlay.opaque with
// opts.UserXattr, trusted.overlay.opaque otherwise).
//
// Nothing is written outside dir: absolute names are taken relative to dir,
// names whose ".." would climb out of dir are rejected, and every parent
// directory is resolved inside dir, following symlinks the tar itself
// created as if dir were "/" (github.com/cyphar/filepath-securejoin). The
// final component of a name is never followed. Hard link targets are
// resolved the same way. This relies on Apply being the only writer of dir
// while it runs, which holds for a fresh snapshot.
//
// A later entry for a path replaces an earlier one (a directory replacing a
// directory keeps its contents). Missing parents are created 0755.
// Ownership, permissions, mtimes and PAX xattrs are applied; directories get
// their metadata after their contents are written. xattrs the filesystem
// refuses (ENOTSUP, EPERM) are skipped and listed in the result, except
// security.capability when running as root, which fails the apply rather
// than silently dropping a file capability. Overlay's own xattrs in the tar
// are ignored: only .wh..wh..opq may make a directory opaque.
func Apply(ctx context.Context, dir string, r io.Reader, opts ApplyOptions) (ApplyResult, error) {
	root, err := filepath.Abs(dir)
	if err != nil {
		return ApplyResult{}, fmt.Errorf("applying layer to %s: %w", dir, err)
	}
	a := &applier{root: root, opts: opts, dirs: map[string]*tar.Header{}, buf: make([]byte, 128<<10)}
	a.implicit = map[string]bool{}
	a.expansion = &Expansion{Compressed: opts.CompressedSize, What: opts.Name}
	if a.expansion.What == "" {
		a.expansion.What = "layer"
	}
	tr := tar.NewReader(r)
	for {
		if err := ctx.Err(); err != nil {
			return a.res, err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return a.res, fmt.Errorf("applying layer to %s: reading tar: %w", root, err)
		}
		if err := a.entry(hdr, tr); err != nil {
			return a.res, fmt.Errorf("applying layer to %s: entry %q: %w", root, hdr.Name, err)
		}
	}
	if err := a.finishDirs(); err != nil {
		return a.res, fmt.Errorf("applying layer to %s: %w", root, err)
	}
	for p := range a.implicit {
		// A later entry may have listed it, or replaced it.
		if fi, err := os.Lstat(p); err == nil && fi.IsDir() && a.dirs[p] == nil {
			rel, _ := filepath.Rel(root, p)
			a.res.ImplicitDirs = append(a.res.ImplicitDirs, filepath.ToSlash(rel))
		}
	}
	slices.Sort(a.res.ImplicitDirs)
	return a.res, nil
}

type applier struct {
	root string
	opts ApplyOptions
	res  ApplyResult
	// dirs holds the header of every directory written, by resolved path;
	// their metadata is applied at the end, because writing entries into a
	// directory changes its mtime, and a read-only mode would stop us
	// writing them (without CAP_DAC_OVERRIDE).
	dirs map[string]*tar.Header
	buf  []byte
	// expansion bounds what the files add up to.
	expansion *Expansion
	// implicit holds the directories made because an entry's parents
	// were missing, by resolved path.
	implicit map[string]bool
}

// cleanName turns a tar name into a clean path relative to the layer root,
// "." for the root itself.
func cleanName(name string) (string, error) {
	if strings.ContainsRune(name, 0) {
		return "", errors.New("name contains NUL")
	}
	c := path.Clean(strings.TrimLeft(name, "/"))
	if c == ".." || strings.HasPrefix(c, "../") {
		return "", fmt.Errorf("name %q escapes the layer root", name)
	}
	return c, nil
}

// resolve returns the host path for the clean relative name rel: its parent
// resolved inside the root (creating missing directories), its last
// component appended unresolved.
func (a *applier) resolve(rel string) (string, error) {
	if rel == "." {
		return a.root, nil
	}
	parent, err := securejoin.SecureJoin(a.root, path.Dir(rel))
	if err != nil {
		return "", fmt.Errorf("resolving parent of %q: %w", rel, err)
	}
	if err := a.mkdirAll(parent); err != nil {
		return "", err
	}
	return filepath.Join(parent, path.Base(rel)), nil
}

// mkdirAll creates the missing directories of p (which SecureJoin has
// resolved, so no existing component is a symlink) with mode 0755.
func (a *applier) mkdirAll(p string) error {
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
	if p == a.root {
		return fmt.Errorf("layer root %s: %w", p, err)
	}
	if err := a.mkdirAll(filepath.Dir(p)); err != nil {
		return err
	}
	if err := os.Mkdir(p, 0o755); err != nil {
		return err
	}
	a.implicit[p] = true
	// Mkdir is subject to the umask.
	return os.Chmod(p, 0o755)
}

// replace makes way for a new entry at p: an existing directory stays when
// the new entry is a directory too, anything else is removed.
func (a *applier) replace(p string, isDir bool) (exists bool, err error) {
	fi, err := os.Lstat(p)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if fi.IsDir() {
		if isDir {
			return true, nil
		}
		if p == a.root {
			return false, errors.New("cannot replace the layer root with a non-directory")
		}
		for d := range a.dirs {
			if d == p || strings.HasPrefix(d, p+"/") {
				delete(a.dirs, d)
			}
		}
		return false, removeAll(p)
	}
	return false, os.Remove(p)
}

func (a *applier) entry(hdr *tar.Header, r io.Reader) error {
	if hdr.Typeflag == tar.TypeXGlobalHeader {
		// PAX global records (e.g. git archive's comment) describe no file.
		return nil
	}
	rel, err := cleanName(hdr.Name)
	if err != nil {
		return err
	}
	base := path.Base(rel)
	switch {
	case base == whiteoutOpaque:
		// The directory itself is resolved too: if it is a symlink, the
		// marker applies to (and stays within) what it points to.
		p, err := securejoin.SecureJoin(a.root, path.Dir(rel))
		if err != nil {
			return fmt.Errorf("resolving %q: %w", path.Dir(rel), err)
		}
		if err := a.mkdirAll(p); err != nil {
			return err
		}
		return a.setOpaque(p)
	case strings.HasPrefix(base, whiteoutMeta):
		// AUFS bookkeeping (.wh..wh.plnk and friends): not files.
		return nil
	case strings.HasPrefix(base, whiteoutPrefix):
		name := base[len(whiteoutPrefix):]
		if name == "" || name == "." || name == ".." {
			return errors.New("invalid whiteout name")
		}
		p, err := a.resolve(path.Join(path.Dir(rel), name))
		if err != nil {
			return err
		}
		if _, err := a.replace(p, false); err != nil {
			return err
		}
		if err := unix.Mknod(p, unix.S_IFCHR, 0); err != nil {
			return &os.PathError{Op: "mknod whiteout", Path: p, Err: err}
		}
		// Keep the entry's time, so that WriteDiff of this directory
		// reproduces the layer.
		return setTimes(p, hdr)
	}

	switch hdr.Typeflag {
	case tar.TypeDir, tar.TypeReg, tar.TypeGNUSparse, tar.TypeSymlink, tar.TypeLink,
		tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
	default:
		// Checked before touching the tree, so an unknown entry changes
		// nothing.
		return fmt.Errorf("unsupported tar entry type %q", hdr.Typeflag)
	}
	p, err := a.resolve(rel)
	if err != nil {
		return err
	}
	if rel == "." && hdr.Typeflag != tar.TypeDir {
		return errors.New("the layer root must be a directory")
	}
	exists, err := a.replace(p, hdr.Typeflag == tar.TypeDir)
	if err != nil {
		return err
	}
	switch hdr.Typeflag {
	case tar.TypeDir:
		if !exists {
			// Owner-writable until finishDirs sets the real mode.
			if err := os.Mkdir(p, 0o700); err != nil {
				return err
			}
		}
		a.dirs[p] = hdr
		return nil
	case tar.TypeReg, tar.TypeGNUSparse:
		// The tar reader expands sparse files to zeros; WriteSparse makes
		// holes of them again.
		if err := a.expansion.Add(hdr.Size); err != nil {
			return err
		}
		if err := a.writeFile(p, r); err != nil {
			return err
		}
	case tar.TypeSymlink:
		if err := os.Symlink(hdr.Linkname, p); err != nil {
			return err
		}
	case tar.TypeLink:
		// The new name shares the target's inode and so its metadata.
		return a.link(p, hdr.Linkname)
	case tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
		mode := map[byte]uint32{tar.TypeChar: unix.S_IFCHR, tar.TypeBlock: unix.S_IFBLK, tar.TypeFifo: unix.S_IFIFO}[hdr.Typeflag]
		dev := unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor))
		if err := unix.Mknod(p, mode|0o600, int(dev)); err != nil {
			return &os.PathError{Op: "mknod", Path: p, Err: err}
		}
	default:
		return fmt.Errorf("unsupported tar entry type %q", hdr.Typeflag)
	}
	return a.metadata(p, hdr)
}

func (a *applier) writeFile(p string, r io.Reader) error {
	f, err := os.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	n, w, err := WriteSparse(f, r, a.buf)
	a.res.Size += n
	a.res.Written += w
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

func (a *applier) link(p, target string) error {
	rel, err := cleanName(target)
	if err != nil {
		return fmt.Errorf("hard link target: %w", err)
	}
	if rel == "." {
		return errors.New("hard link to the layer root")
	}
	src, err := a.resolve(rel)
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
		return &os.LinkError{Op: "link", Old: src, New: p, Err: err}
	}
	return nil
}

// metadata applies ownership, mode, xattrs and times, in that order: chown
// clears setuid/setgid bits and security.capability, so it goes first.
func (a *applier) metadata(p string, hdr *tar.Header) error {
	if !a.opts.NoLchown {
		if err := os.Lchown(p, hdr.Uid, hdr.Gid); err != nil {
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
	if err := a.setXattrs(p, hdr); err != nil {
		return err
	}
	return setTimes(p, hdr)
}

// setTimes sets p's mtime (and atime, defaulting to the mtime) from hdr,
// without following a symlink.
func setTimes(p string, hdr *tar.Header) error {
	atime := hdr.AccessTime
	if atime.IsZero() {
		atime = hdr.ModTime
	}
	ts := []unix.Timespec{toTimespec(atime), toTimespec(hdr.ModTime)}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "utimensat", Path: p, Err: err}
	}
	return nil
}

func toTimespec(t time.Time) unix.Timespec {
	if t.IsZero() {
		// The Unix epoch, rather than year 1, which the kernel may reject.
		return unix.Timespec{}
	}
	return unix.NsecToTimespec(t.UnixNano())
}

func (a *applier) setXattrs(p string, hdr *tar.Header) error {
	var names []string
	for k := range hdr.PAXRecords {
		if n, ok := strings.CutPrefix(k, paxXattr); ok && !isOverlayXattr(n) {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	for _, n := range names {
		err := unix.Lsetxattr(p, n, []byte(hdr.PAXRecords[paxXattr+n]), 0)
		if err == nil {
			continue
		}
		if errors.Is(err, unix.ENOTSUP) || errors.Is(err, unix.EPERM) {
			if n == "security.capability" && os.Geteuid() == 0 {
				return fmt.Errorf("setting file capability (xattr %s) on %s: %w; the image would lose a capability its program needs", n, p, err)
			}
			a.res.SkippedXattrs = append(a.res.SkippedXattrs, p+": "+n)
			continue
		}
		return &os.PathError{Op: "lsetxattr " + n, Path: p, Err: err}
	}
	return nil
}

func (a *applier) setOpaque(dir string) error {
	name := trustedOpaque
	if a.opts.UserXattr {
		name = userOpaque
	}
	if err := unix.Lsetxattr(dir, name, []byte("y"), 0); err != nil {
		return &os.PathError{Op: "lsetxattr " + name, Path: dir, Err: err}
	}
	return nil
}

// finishDirs applies directory metadata, deepest first, so that a
// directory made read-only does not block its children's.
func (a *applier) finishDirs() error {
	paths := make([]string, 0, len(a.dirs))
	for p := range a.dirs {
		paths = append(paths, p)
	}
	slices.Sort(paths)
	for _, p := range slices.Backward(paths) {
		if err := a.metadata(p, a.dirs[p]); err != nil {
			return fmt.Errorf("directory %s: %w", p, err)
		}
	}
	return nil
}
