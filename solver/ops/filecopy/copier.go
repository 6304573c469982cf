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

	"github.com/builder-dev/builder/internal/fdfile"
	"github.com/builder-dev/builder/llb"
	"github.com/builder-dev/builder/source/localctx"
	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/patternmatcher"
	"golang.org/x/sys/unix"
)

// copier copies files into the tree at root.
type copier struct {
	ctx  context.Context
	root string
	tree *localctx.Tree
	// srcRoot is tree.Root with its symlinks resolved.
	srcRoot  string
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
	// workers bounds the batches of files of a directory copied at once;
	// below 2 every file is copied in turn, on the walk's thread.
	workers int
	// xattrs is which extended attributes are copied (xattr.go).
	xattrs xattrKeep
	// inodes maps the source inode of a hard-linked file to its first
	// copy, so that later links to it become hard links too.
	inodes map[uint64]string
	// euid, egid and umask are the walk thread's (umask -1: unknown),
	// read by readCreds when the first batch of files is copied.
	euid, egid, umask int
	credsRead         bool
	// depth is how many directories below the source the walk is.
	depth int
	// expect is what the checksum of the source being copied covered,
	// when the tree verifies (localctx.Tree.Verify).
	expect *localctx.Expect
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

// hardlinkSource returns the first copy of the file st when it has other
// links already copied; else it remembers dst as the copy of its inode.
func (c *copier) hardlinkSource(st *unix.Stat_t, dst string) (string, bool) {
	if st.Nlink < 2 || c.inodes == nil {
		return "", false
	}
	if first, ok := c.inodes[st.Ino]; ok {
		return first, true
	}
	c.inodes[st.Ino] = dst
	return "", false
}

// WriteFile writes r to the new file dst (mode 0600, not following a
// symlink); blocks of zeros become holes.
func WriteFile(dst string, r io.Reader) error {
	f, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	if _, _, err := fdfile.WriteSparse(f, r, nil); err != nil {
		f.Close()
		return fmt.Errorf("writing %s: %w", dst, err)
	}
	return f.Close()
}
