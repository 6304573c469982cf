// Package filecopy carries out COPY, ADD (local files and archives) and
// mkdir inside a mounted file tree, with Docker's and BuildKit's rules for
// destinations, owners, modes, excludes and hard links. Every path in the
// tree is resolved inside its root; archives are unpacked by
// internal/archive, confined to their destination.
package filecopy

import (
	"context"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"runtime"
	"strings"

	"github.com/builder-dev/builder/internal/archive"
	"github.com/builder-dev/builder/llb"
	"github.com/builder-dev/builder/source/localctx"
	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/patternmatcher"
)

// Copy carries out op, a COPY or ADD, into the file tree at root, with
// Docker's rules: a directory source copies its contents; a destination
// ending in "/" (or an existing directory, or several sources) is a
// directory to copy into; ADD unpacks a local archive. Entries copied from
// another stage or image (keepOwners) keep their owners unless --chown is
// given; context entries become 0:0, as in BuildKit. Entries from another
// stage or image also keep their user.* xattrs and file capabilities
// (xattr.go). chown is op.Chown resolved in root by the caller (nil
// without --chown).
func Copy(ctx context.Context, root string, tree *localctx.Tree, op llb.CopyOp, keepOwners bool, chown *archive.Owner) error {
	c, err := newCopier(ctx, root, tree, op, keepOwners, chown)
	if err != nil {
		return err
	}
	matches, err := sourceMatches(tree, op)
	if err != nil {
		return err
	}
	dest := path.Clean(op.Dest)
	destIsDir := strings.HasSuffix(op.Dest, "/") || op.Parents
	if !destIsDir {
		if fi, err := c.stat(dest); err == nil && fi.IsDir() {
			destIsDir = true
		}
	}
	for _, m := range matches {
		if c.expect, err = tree.Expect(m.rel); err != nil {
			return err
		}
		if err := c.copyMatch(m, dest, destIsDir || m.several, op.Parents); err != nil {
			return err
		}
		if c.expect != nil {
			if err := c.expect.Done(); err != nil {
				return err
			}
		}
	}
	return c.writeInlines(op.Inline, dest, destIsDir || len(op.Inline) > 1)
}

// Mkdir makes the directory p of the tree at root and its missing
// parents, owned by owner (nil for root).
func Mkdir(root, p string, owner *archive.Owner) error {
	c := &copier{root: root}
	if owner != nil {
		c.uid, c.gid = owner.UID, owner.GID
	}
	return c.mkdirAll(p)
}

// CopyTree copies rel of tree (a directory's contents, or a file) into the
// directory dir, as COPY would.
func CopyTree(ctx context.Context, dir string, tree *localctx.Tree, rel string) error {
	return Copy(ctx, dir, tree, llb.CopyOp{Sources: []string{rel}, Dest: "/"}, false, nil)
}

// newCopier sets up a copier for op: its --chown owner, --chmod and
// --exclude.
func newCopier(ctx context.Context, root string, tree *localctx.Tree, op llb.CopyOp, keepOwners bool, chown *archive.Owner) (*copier, error) {
	c := &copier{ctx: ctx, tree: tree, add: op.Add, keepOwners: keepOwners && chown == nil, xattrs: xattrsFor(keepOwners)}
	// The roots are the caller's and may be reached through a symlink (a
	// context directory that is one): they are resolved once here, as
	// every directory below them is opened without following a symlink.
	var err error
	if c.root, err = filepath.EvalSymlinks(root); err != nil {
		return nil, err
	}
	if tree != nil {
		if c.srcRoot, err = filepath.EvalSymlinks(tree.Root); err != nil {
			return nil, err
		}
	}
	// Small files cost system calls more than bytes: copying them on
	// every core shortens a COPY of many.
	c.workers = min(runtime.GOMAXPROCS(0), 4)
	if chown != nil {
		c.uid, c.gid, c.chown = chown.UID, chown.GID, true
	}
	if op.Chmod != "" {
		m, err := llb.ParseChmod(op.Chmod)
		if err != nil {
			return nil, err
		}
		c.chmod = m
	}
	if c.excludes, err = NewExcludes(op.Excludes); err != nil {
		return nil, err
	}
	return c, nil
}

// NewExcludes compiles --exclude patterns; nil for none.
func NewExcludes(patterns []string) (*patternmatcher.PatternMatcher, error) {
	if len(patterns) == 0 {
		return nil, nil
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return nil, fmt.Errorf("--exclude: %w", err)
	}
	return pm, nil
}

// match is one path a source pattern selected. several is set on the
// matches of a pattern that matched more than one path: they go into the
// destination as a directory. Several sources that match one path each
// are each copied onto the destination, as in BuildKit (the last wins when
// it is no directory).
type match struct {
	rel, keep string
	several   bool
}

func sourceMatches(tree *localctx.Tree, op llb.CopyOp) ([]match, error) {
	var matches []match
	for _, src := range op.Sources {
		ms, err := tree.Match(src)
		if err != nil {
			return nil, err
		}
		for _, m := range ms {
			matches = append(matches, match{rel: m, keep: parentsKept(src, m), several: len(ms) > 1})
		}
	}
	return matches, nil
}

// copyMatch copies one match into dest.
func (c *copier) copyMatch(m match, dest string, destIsDir, parents bool) error {
	// Hard links are kept within one source, as BuildKit's copy does.
	c.inodes = map[uint64]string{}
	src, err := securejoin.SecureJoin(c.srcRoot, m.rel)
	if err != nil {
		return err
	}
	fi, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("%s: %w", m.rel, err)
	}
	into := dest
	if parents {
		// --parents: the source's path (after a "/./" pivot) is kept.
		into = path.Join(dest, path.Dir(m.keep))
		if fi.IsDir() {
			into = path.Join(dest, m.keep)
		}
	}
	if c.add && fi.Mode().IsRegular() {
		kind, err := archiveKind(src)
		if err != nil {
			return err
		}
		if kind != "" {
			// ADD unpacks a local archive into the destination directory.
			if err := c.mkdirAll(into); err != nil {
				return err
			}
			if err := c.unpack(src, kind, into); err != nil {
				return fmt.Errorf("unpacking %s: %w", m.rel, err)
			}
			return checkPath(c.expect, src)
		}
	}
	if fi.IsDir() {
		if err := checkPath(c.expect, src); err != nil {
			return err
		}
		return c.copyDir(src, m.rel, into)
	}
	if c.excluded(path.Base(m.rel)) {
		return nil
	}
	target := into
	if destIsDir {
		if err := c.mkdirAll(into); err != nil {
			return err
		}
		target = path.Join(into, path.Base(m.rel))
	} else if err := c.mkdirAll(path.Dir(into)); err != nil {
		return err
	}
	return c.copyFile(src, m.rel, target)
}

// copyDir copies the contents of the source directory src (rel in the
// tree) into the directory into.
func (c *copier) copyDir(src, rel, into string) error {
	// Into an existing directory: merge, keeping its metadata.
	_, err := c.stat(into)
	fresh := err != nil
	if fresh {
		// As in BuildKit, a new destination directory is made like a
		// missing parent: 0755 (or an octal --chmod's permission bits),
		// owned by the --chown user or root; the source directory's own
		// mode and owner are not copied.
		if err := c.mkdirAll(into); err != nil {
			return err
		}
		if err := c.chmodNewDir(into); err != nil {
			return err
		}
	}
	return c.copyDirInto(src, rel, into, fresh)
}

// writeInlines writes the COPY heredoc documents into dest.
func (c *copier) writeInlines(files []llb.InlineFile, dest string, destIsDir bool) error {
	for _, f := range files {
		target := dest
		if destIsDir {
			if err := c.mkdirAll(dest); err != nil {
				return err
			}
			target = path.Join(dest, f.Path)
		} else if err := c.mkdirAll(path.Dir(dest)); err != nil {
			return err
		}
		if err := c.writeInline(f, target); err != nil {
			return err
		}
	}
	return nil
}

// parentsKept is the part of match m's path that COPY --parents keeps:
// all of it, or what follows a "/./" in the source pattern.
func parentsKept(pattern, m string) string {
	clean := strings.TrimPrefix(filepath.ToSlash(pattern), "/")
	i := strings.Index(clean, "/./")
	if i < 0 {
		return m
	}
	pivot := path.Clean(clean[:i])
	if rest, ok := strings.CutPrefix(m, pivot+"/"); ok {
		return rest
	}
	return m
}
