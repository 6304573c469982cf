package filecopy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"syscall"
	"time"

	"github.com/builder-dev/builder/internal/archive"
	"github.com/builder-dev/builder/llb"
	"github.com/builder-dev/builder/source/localctx"
	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/patternmatcher"
	"golang.org/x/sys/unix"
)

// copier copies files into the tree at root.
type copier struct {
	ctx      context.Context
	root     string
	tree     *localctx.Tree
	uid, gid int
	// chown is set when --chown gave uid and gid (archives keep their
	// owners otherwise).
	chown    bool
	chmod    *llb.Chmod
	excludes *patternmatcher.PatternMatcher
	add      bool
	// keepOwners keeps the source entries' owners (COPY --from without
	// --chown).
	keepOwners bool
	// inodes maps the source inode of a hard-linked file to its first
	// copy, so that later links to it become hard links too.
	inodes map[uint64]string
}

// excluded reports whether COPY --exclude leaves out rel, a path relative
// to the source being copied.
func (c *copier) excluded(rel string) bool {
	if c.excludes == nil {
		return false
	}
	ok, err := c.excludes.MatchesOrParentMatches(rel)
	return err == nil && ok
}

// hasExceptions reports whether any exclude pattern starts with "!".
func (c *copier) hasExceptions() bool {
	return c.tree.HasExceptions() || (c.excludes != nil && c.excludes.Exclusions())
}

// resolve returns the host path of rel inside root: symlinks in its parents
// are followed within root, its last element is not followed.
func (c *copier) resolve(rel string) (string, error) {
	rel = path.Clean("/" + rel)
	if rel == "/" {
		return c.root, nil
	}
	dir, err := securejoin.SecureJoin(c.root, path.Dir(rel))
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, path.Base(rel)), nil
}

func (c *copier) stat(rel string) (fs.FileInfo, error) {
	p, err := securejoin.SecureJoin(c.root, rel)
	if err != nil {
		return nil, err
	}
	return os.Stat(p)
}

// lstat reports whether rel exists in the root (not following its last
// element).
func (c *copier) lstat(rel string) (fs.FileInfo, bool) {
	p, err := c.resolve(rel)
	if err != nil {
		return nil, false
	}
	fi, err := os.Lstat(p)
	return fi, err == nil
}

// chmodNewDir gives a destination directory COPY made the permission bits
// of an octal --chmod.
func (c *copier) chmodNewDir(rel string) error {
	if c.chmod == nil {
		return nil
	}
	m, ok := c.chmod.Octal()
	if !ok {
		return nil
	}
	p, err := c.resolve(rel)
	if err != nil {
		return err
	}
	return os.Chmod(p, m&fs.ModePerm)
}

// removeIfEmpty removes the directory rel when it holds nothing.
func (c *copier) removeIfEmpty(rel string) error {
	p, err := c.resolve(rel)
	if err != nil {
		return err
	}
	entries, err := os.ReadDir(p)
	if err != nil || len(entries) > 0 {
		return err
	}
	return os.Remove(p)
}

// mkdirAll creates rel and its missing parents, owned by the --chown user.
func (c *copier) mkdirAll(rel string) error {
	rel = path.Clean("/" + rel)
	if rel == "/" {
		return nil
	}
	if fi, err := c.stat(rel); err == nil {
		if !fi.IsDir() {
			return fmt.Errorf("cannot copy to %s: it is not a directory", rel)
		}
		return nil
	}
	if err := c.mkdirAll(path.Dir(rel)); err != nil {
		return err
	}
	p, err := securejoin.SecureJoin(c.root, rel)
	if err != nil {
		return err
	}
	if err := os.Mkdir(p, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	return os.Lchown(p, c.uid, c.gid)
}

// copyDirContents copies the entries of the host directory src into dest.
// rel is src relative to the tree (for .dockerignore), exRel relative to
// the source being copied (for --exclude).
func (c *copier) copyDirContents(src, rel, exRel, dest string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		childRel := path.Join(rel, e.Name())
		childEx := path.Join(exRel, e.Name())
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
		fi, err := e.Info()
		if err != nil {
			return err
		}
		childDest := path.Join(dest, e.Name())
		_, existed := c.lstat(childDest)
		if err := c.copyEntry(filepath.Join(src, e.Name()), fi, childRel, childEx, childDest); err != nil {
			return err
		}
		if excluded && !existed {
			// As in BuildKit, an excluded directory appears only as the
			// parent of something an exception brings back.
			if err := c.removeIfEmpty(childDest); err != nil {
				return err
			}
		}
	}
	return nil
}

// copyEntry copies one file, directory (recursively), symlink or special
// file from the host path src to rel in the root.
func (c *copier) copyEntry(src string, fi fs.FileInfo, srcRel, exRel, rel string) error {
	dst, err := c.resolve(rel)
	if err != nil {
		return err
	}
	mode := fi.Mode()
	if existing, err := os.Lstat(dst); err == nil && !(existing.IsDir() && mode.IsDir()) {
		if err := os.RemoveAll(dst); err != nil {
			return err
		}
	}
	switch {
	case mode.IsDir():
		if err := os.Mkdir(dst, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
			return err
		}
		if err := c.copyDirContents(src, srcRel, exRel, rel); err != nil {
			return err
		}
	case mode.IsRegular():
		if first, ok := c.hardlinkSource(fi, dst); ok {
			if err := os.Link(first, dst); err != nil {
				return err
			}
		} else if err := copyFile(src, dst); err != nil {
			return err
		}
	case mode&fs.ModeSymlink != 0:
		target, err := os.Readlink(src)
		if err != nil {
			return err
		}
		if err := os.Symlink(target, dst); err != nil {
			return err
		}
	default:
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return fmt.Errorf("%s: unsupported file type %s", src, mode.Type())
		}
		if err := unix.Mknod(dst, uint32(st.Mode), int(st.Rdev)); err != nil {
			return &os.PathError{Op: "mknod", Path: dst, Err: err}
		}
	}
	uid, gid := c.uid, c.gid
	if st, ok := fi.Sys().(*syscall.Stat_t); ok && c.keepOwners {
		uid, gid = int(st.Uid), int(st.Gid)
	}
	return c.setAttrs(dst, mode, fi.ModTime(), uid, gid)
}

// hardlinkSource returns the first copy of the file fi when fi has other
// links already copied; else it remembers dst as the copy of fi's inode.
func (c *copier) hardlinkSource(fi fs.FileInfo, dst string) (string, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st.Nlink < 2 || c.inodes == nil {
		return "", false
	}
	if first, ok := c.inodes[st.Ino]; ok {
		return first, true
	}
	c.inodes[st.Ino] = dst
	return "", false
}

// setAttrs gives a copied entry its owner, mode (after --chmod) and mtime.
func (c *copier) setAttrs(dst string, mode fs.FileMode, mtime time.Time, uid, gid int) error {
	if err := os.Lchown(dst, uid, gid); err != nil {
		return err
	}
	if mode&fs.ModeSymlink == 0 {
		perm := mode & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
		if c.chmod != nil {
			perm = c.chmod.Apply(mode & (fs.ModeDir | fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky))
		}
		if err := os.Chmod(dst, perm); err != nil {
			return err
		}
	}
	ts := []unix.Timespec{unix.NsecToTimespec(mtime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, dst, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "utimes", Path: dst, Err: err}
	}
	return nil
}

// writeInline writes a COPY heredoc document to rel.
func (c *copier) writeInline(f llb.InlineFile, rel string) error {
	dst, err := c.resolve(rel)
	if err != nil {
		return err
	}
	if existing, err := os.Lstat(dst); err == nil && !existing.IsDir() {
		if err := os.Remove(dst); err != nil {
			return err
		}
	}
	if err := os.WriteFile(dst, []byte(f.Data), 0o600); err != nil {
		return err
	}
	return c.setAttrs(dst, fs.FileMode(f.Mode), time.Now(), c.uid, c.gid)
}

// copyFile copies the regular file src to the new file dst.
func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	return WriteFile(dst, in)
}

// WriteFile writes r to the new file dst (mode 0600, not following a
// symlink); blocks of zeros become holes.
func WriteFile(dst string, r io.Reader) error {
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	if _, _, err := archive.WriteSparse(f, r, nil); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", dst, err)
	}
	return f.Close()
}
