package ops

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/builder-dev/builder/snapshot"
	"github.com/builder-dev/builder/source"
	securejoin "github.com/cyphar/filepath-securejoin"
	"golang.org/x/sys/unix"
)

// archiveKind tells whether the local file ADD copies is an archive to
// unpack, as BuildKit decides: it is one when its stream, decompressed as
// its first bytes say (gzip, bzip2, xz, zstd or none), starts with a tar
// header. It returns the compression ("gzip", "bzip2", "xz", "zstd",
// "tar"), or "" for a file to copy as it is, such as a gzipped text file.
func archiveKind(p string) (string, error) {
	kind, ok, err := source.IsArchive(p)
	if err != nil || !ok {
		return "", err
	}
	return string(kind), nil
}

// unpack extracts the archive at src (of the given kind) into the
// directory dest of the root, as `tar -x` would inside the root: existing
// directories are merged, other existing files replaced; modes, owners
// (unless --chown is given), times, symlinks, hard links and device nodes
// are kept. No entry can write outside dest: names are relative to dest,
// ".." may not climb above it, and symlinks met on the way (the archive's
// own, absolute ones included) are resolved with dest as their root, as
// BuildKit's chrooted untar does: "l -> /etc" then "l/passwd" writes
// dest/etc/passwd.
func (c *copier) unpack(src, kind, dest string) error {
	a, err := source.OpenArchive(src)
	if err != nil {
		return err
	}
	defer a.Close()
	// dest itself was made (or found) by the caller, resolved in the root.
	destHost, err := securejoin.SecureJoin(c.root, dest)
	if err != nil {
		return err
	}
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	u := &unpacker{c: c, dest: destHost, expansion: &snapshot.Expansion{Compressed: fi.Size(), What: "archive"}}
	for {
		hdr, err := a.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return fmt.Errorf("reading %s archive: %w", kind, err)
		}
		if err := u.entry(hdr, a); err != nil {
			return err
		}
	}
	return u.finishDirs()
}

// chowned reports whether the copy has a --chown owner (0:0 included),
// which then replaces the archive's owners.
func (c *copier) chowned() bool { return c.chown }

type unpacker struct {
	c *copier
	// dest is the host path of the destination directory, the root every
	// member name and symlink is resolved in.
	dest string
	// expansion bounds what the archive's files add up to.
	expansion *snapshot.Expansion
	// dirs are the directories made or merged, whose times are set last,
	// once nothing more is written into them.
	dirs []dirTimes
}

type dirTimes struct {
	path         string
	atime, mtime time.Time
}

// entryPath is the clean path of archive member name relative to the
// destination ("" for the destination itself): ".." may not leave it.
func entryPath(name string) (string, error) {
	if rel := path.Clean(name); rel == ".." || strings.HasPrefix(rel, "../") {
		return "", fmt.Errorf("archive member %q points outside the destination", name)
	}
	return strings.TrimPrefix(path.Clean("/"+name), "/"), nil
}

// resolve returns the host path of rel (from entryPath): its parents are
// resolved inside the destination, creating missing ones, and its last
// element is not followed.
func (u *unpacker) resolve(rel string) (string, error) {
	if rel == "" {
		return u.dest, nil
	}
	parent, err := securejoin.SecureJoin(u.dest, path.Dir(rel))
	if err != nil {
		return "", err
	}
	if err := u.mkdirAll(parent); err != nil {
		return "", err
	}
	return filepath.Join(parent, path.Base(rel)), nil
}

// mkdirAll creates the missing directories of p, a path SecureJoin
// resolved inside the destination (no existing component is a symlink), as
// 0755 owned by the --chown user. Existing directories keep their mode.
func (u *unpacker) mkdirAll(p string) error {
	fi, err := os.Lstat(p)
	if err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("cannot unpack into %s: it is not a directory", p)
		}
		return nil
	}
	if !errors.Is(err, fs.ErrNotExist) || p == u.dest {
		return err
	}
	if err := u.mkdirAll(filepath.Dir(p)); err != nil {
		return err
	}
	if err := os.Mkdir(p, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	if err := os.Chmod(p, 0o755); err != nil {
		return err
	}
	return os.Lchown(p, u.c.uid, u.c.gid)
}

func (u *unpacker) entry(hdr *tar.Header, r io.Reader) error {
	switch hdr.Typeflag {
	case tar.TypeXGlobalHeader:
		return nil
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse, tar.TypeDir, tar.TypeSymlink, tar.TypeLink,
		tar.TypeChar, tar.TypeBlock, tar.TypeFifo:
	default:
		return fmt.Errorf("archive member %q: unsupported type %q", hdr.Name, hdr.Typeflag)
	}
	rel, err := entryPath(hdr.Name)
	if err != nil {
		return err
	}
	if rel != "" && u.c.excluded(rel) {
		// ADD --exclude applies to the archive's members too.
		return nil
	}
	if rel == "" {
		if hdr.Typeflag == tar.TypeDir {
			// "./" is the destination itself, already made.
			return nil
		}
		return fmt.Errorf("archive member %q would replace the destination", hdr.Name)
	}
	dst, err := u.resolve(rel)
	if err != nil {
		return err
	}
	if fi, err := os.Lstat(dst); err == nil && !(fi.IsDir() && hdr.Typeflag == tar.TypeDir) {
		if err := os.RemoveAll(dst); err != nil {
			return err
		}
	}
	mode := hdr.FileInfo().Mode()
	perm := mode.Perm() | mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)
	switch hdr.Typeflag {
	case tar.TypeDir:
		if err := os.Mkdir(dst, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
	case tar.TypeReg, tar.TypeRegA, tar.TypeGNUSparse:
		if err := u.expansion.Add(hdr.Size); err != nil {
			return err
		}
		if err := writeFile(dst, r); err != nil {
			return err
		}
	case tar.TypeSymlink:
		if err := os.Symlink(hdr.Linkname, dst); err != nil {
			return err
		}
	case tar.TypeLink:
		targetRel, err := entryPath(hdr.Linkname)
		if err == nil && targetRel == "" {
			err = errors.New("it links to the destination directory")
		}
		if err != nil {
			return fmt.Errorf("hard link %q: %w", hdr.Name, err)
		}
		target, err := u.resolve(targetRel)
		if err != nil {
			return err
		}
		if err := os.Link(target, dst); err != nil {
			return fmt.Errorf("hard link %q to %q: %w", hdr.Name, hdr.Linkname, err)
		}
		// The link shares the inode and metadata of its target.
		return nil
	default:
		devMode := uint32(perm)
		switch hdr.Typeflag {
		case tar.TypeChar:
			devMode |= unix.S_IFCHR
		case tar.TypeBlock:
			devMode |= unix.S_IFBLK
		case tar.TypeFifo:
			devMode |= unix.S_IFIFO
		}
		if err := unix.Mknod(dst, devMode, int(unix.Mkdev(uint32(hdr.Devmajor), uint32(hdr.Devminor)))); err != nil {
			return &os.PathError{Op: "mknod", Path: dst, Err: err}
		}
	}
	uid, gid := hdr.Uid, hdr.Gid
	if u.c.chowned() {
		uid, gid = u.c.uid, u.c.gid
	}
	if err := os.Lchown(dst, uid, gid); err != nil {
		return err
	}
	if hdr.Typeflag != tar.TypeSymlink {
		// After the chown, which clears set-id bits.
		if err := os.Chmod(dst, perm); err != nil {
			return err
		}
	}
	setXattrs(dst, hdr)
	atime := hdr.AccessTime
	if atime.IsZero() {
		atime = hdr.ModTime
	}
	if hdr.Typeflag == tar.TypeDir {
		u.dirs = append(u.dirs, dirTimes{dst, atime, hdr.ModTime})
		return nil
	}
	return setTimes(dst, atime, hdr.ModTime)
}

// finishDirs sets directory times, deepest last-made first, now that
// their contents are written.
func (u *unpacker) finishDirs() error {
	for i := len(u.dirs) - 1; i >= 0; i-- {
		d := u.dirs[i]
		if err := setTimes(d.path, d.atime, d.mtime); err != nil {
			return err
		}
	}
	return nil
}

// writeFile writes r to the new file dst; blocks of zeros (the holes of a
// sparse archive member, which archive/tar expands) become holes.
func writeFile(dst string, r io.Reader) error {
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	if _, _, err := snapshot.WriteSparse(f, r, nil); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", dst, err)
	}
	return f.Close()
}

func setTimes(p string, atime, mtime time.Time) error {
	ts := []unix.Timespec{unix.NsecToTimespec(atime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "utimes", Path: p, Err: err}
	}
	return nil
}

// setXattrs restores the extended attributes an archive records (file
// capabilities, say), best effort as tar does; overlay's own attributes
// are never taken from an archive.
func setXattrs(p string, hdr *tar.Header) {
	const prefix = "SCHILY.xattr."
	for k, v := range hdr.PAXRecords {
		name, ok := strings.CutPrefix(k, prefix)
		if !ok || strings.HasPrefix(name, "trusted.") || strings.HasPrefix(name, "user.overlay.") {
			continue
		}
		_ = unix.Lsetxattr(p, name, []byte(v), 0)
	}
}
