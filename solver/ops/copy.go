package ops

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/builder-dev/builder/executor"
	"github.com/builder-dev/builder/llb"
	"github.com/builder-dev/builder/snapshot"
	"github.com/builder-dev/builder/solver"
	"github.com/builder-dev/builder/source/localctx"
	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/patternmatcher"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

type copyOp struct {
	w  *Worker
	op llb.CopyOp
	v  *llb.Vertex
	// parts are what the last CacheKey covered, for explanations.
	parts []solver.Part
	// extra holds the context checksums CacheKey computed.
	extra []string
}

// local returns the context a COPY reads, if its source is the context.
func (o *copyOp) local() (llb.LocalOp, bool) {
	if len(o.v.Inputs()) < 2 || o.v.Inputs()[1] == nil {
		return llb.LocalOp{}, false
	}
	l, ok := o.v.Inputs()[1].Op().(llb.LocalOp)
	return l, ok
}

// CacheKey adds, for a copy from the build context, a checksum of exactly
// the files each source selects.
func (o *copyOp) CacheKey(ctx context.Context, in []digest.Digest) (digest.Digest, error) {
	l, ok := o.local()
	if !ok {
		return opKey(o.op, in), nil
	}
	if o.extra != nil {
		// Asked again with inputs' contents for keys: the files are the same.
		return opKey(o.op, in, o.extra...), nil
	}
	tree, err := localctx.NewTree(l.Dir, l.Excludes)
	if err != nil {
		return "", err
	}
	tree.Sums = o.w.DB.FileSums()
	excludes, err := newExcludes(o.op.Excludes)
	if err != nil {
		return "", err
	}
	var parts []string
	for _, src := range o.op.Sources {
		matches, err := tree.Match(src)
		if err != nil {
			return "", err
		}
		for _, m := range matches {
			sum, files, err := tree.ChecksumDetail(m, excludes)
			if err != nil {
				return "", err
			}
			parts = append(parts, m, sum)
			if files == nil {
				o.parts = append(o.parts, solver.Part{Name: "content:" + m, Value: sum})
			}
			for _, f := range llb.SortedKeys(files) {
				o.parts = append(o.parts, solver.Part{Name: "file:" + f, Value: files[f]})
			}
		}
	}
	if parts == nil {
		parts = []string{}
	}
	o.extra = parts
	return opKey(o.op, in, parts...), nil
}

// ContentKey implements solver.ContentKeyer for a copy from another file
// tree: it keys on the checksums of the files selected there, so a source
// stage that was rebuilt into the same files keeps this step cached.
func (o *copyOp) ContentKey(ctx context.Context, inputs []solver.Result) (digest.Digest, error) {
	if _, fromContext := o.local(); fromContext || len(inputs) < 2 || inputs[1].Snapshot == "" {
		return "", nil
	}
	lowers, err := o.w.Lowers(inputs[1].Snapshot)
	if err != nil {
		return "", err
	}
	excludes, err := newExcludes(o.op.Excludes)
	if err != nil {
		return "", err
	}
	dest := inputs[0].Content
	parts := []string{dest.String()}
	err = o.w.Snapshots.WithMounts(ctx, [][]snapshot.Mount{o.w.Snapshots.View(lowers)}, func(roots []string) error {
		tree, err := localctx.NewTree(roots[0], nil)
		if err != nil {
			return err
		}
		tree.Serial = true
		for _, src := range o.op.Sources {
			matches, err := tree.Match(src)
			if err != nil {
				return err
			}
			for _, m := range matches {
				sum, err := tree.Checksum(m, excludes)
				if err != nil {
					return err
				}
				parts = append(parts, m, sum)
			}
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	return opKey(o.op, nil, parts...), nil
}

// KeyParts implements solver.KeyDescriber: the instruction, and each file
// from the context it selected.
func (o *copyOp) KeyParts() []solver.Part {
	return append([]solver.Part{{Name: "instruction", Value: string(mustJSON(o.op))}}, o.parts...)
}

func newExcludes(patterns []string) (*patternmatcher.PatternMatcher, error) {
	if len(patterns) == 0 {
		return nil, nil
	}
	pm, err := patternmatcher.New(patterns)
	if err != nil {
		return nil, fmt.Errorf("--exclude: %w", err)
	}
	return pm, nil
}

func (o *copyOp) Run(ctx context.Context, inputs []solver.Result, _ io.Writer) (solver.Result, error) {
	parent := inputs[0].Snapshot
	id, mounts, err := o.w.newLayer(parent)
	if err != nil {
		return solver.Result{}, err
	}
	sets := [][]snapshot.Mount{mounts}
	l, fromContext := o.local()
	fromTree := !fromContext && len(inputs) > 1
	if fromTree {
		lowers, err := o.w.Lowers(inputs[1].Snapshot)
		if err != nil {
			o.w.Snapshots.Remove(id)
			return solver.Result{}, err
		}
		sets = append(sets, o.w.Snapshots.View(lowers))
	}
	err = o.w.Snapshots.WithMounts(ctx, sets, func(roots []string) error {
		var tree *localctx.Tree
		var err error
		switch {
		case fromContext:
			tree, err = localctx.NewTree(l.Dir, l.Excludes)
		case fromTree:
			tree, err = localctx.NewTree(roots[1], nil)
		}
		if err != nil {
			return err
		}
		return o.copy(roots[0], tree, fromTree)
	})
	if err != nil {
		o.w.Snapshots.Remove(id)
		return solver.Result{}, err
	}
	return o.w.commit(id, parent, o.v.Meta().Name)
}

// copy carries out the COPY into the file tree at root, with Docker's rules:
// a directory source copies its contents; a destination ending in "/" (or
// an existing directory, or several sources) is a directory to copy into.
// Entries copied from another stage or image keep their owners unless
// --chown is given; context entries become 0:0, as in BuildKit.
func (o *copyOp) copy(root string, tree *localctx.Tree, keepOwners bool) error {
	c := &copier{root: root, tree: tree, add: o.op.Add, keepOwners: keepOwners && o.op.Chown == ""}
	if o.op.Chown != "" {
		uid, gid, err := executor.LookupOwner(root, o.op.Chown)
		if err != nil {
			return fmt.Errorf("--chown=%s: %w", o.op.Chown, err)
		}
		c.uid, c.gid, c.chown = uid, gid, true
	}
	if o.op.Chmod != "" {
		m, err := llb.ParseChmod(o.op.Chmod)
		if err != nil {
			return err
		}
		c.chmod = m
	}
	var err error
	if c.excludes, err = newExcludes(o.op.Excludes); err != nil {
		return err
	}
	// several is set on the matches of a pattern that matched more than
	// one path: they go into the destination as a directory. Several
	// sources that match one path each are each copied onto the
	// destination, as in BuildKit (the last wins when it is no directory).
	type match struct {
		rel, keep string
		several   bool
	}
	var matches []match
	for _, src := range o.op.Sources {
		ms, err := tree.Match(src)
		if err != nil {
			return err
		}
		for _, m := range ms {
			matches = append(matches, match{rel: m, keep: parentsKept(src, m), several: len(ms) > 1})
		}
	}
	dest := path.Clean(o.op.Dest)
	destIsDir := strings.HasSuffix(o.op.Dest, "/") || o.op.Parents
	if !destIsDir {
		if fi, err := c.stat(dest); err == nil && fi.IsDir() {
			destIsDir = true
		}
	}
	for _, m := range matches {
		destIsDir := destIsDir || m.several
		// Hard links are kept within one source, as BuildKit's copy does.
		c.inodes = map[uint64]string{}
		src, err := securejoin.SecureJoin(tree.Root, m.rel)
		if err != nil {
			return err
		}
		fi, err := os.Stat(src)
		if err != nil {
			return fmt.Errorf("%s: %w", m.rel, err)
		}
		into := dest
		if o.op.Parents {
			// --parents: the source's path (after a "/./" pivot) is kept.
			into = path.Join(dest, path.Dir(m.keep))
			if fi.IsDir() {
				into = path.Join(dest, m.keep)
			}
		}
		if c.add && fi.Mode().IsRegular() {
			if kind, err := archiveKind(src); err != nil {
				return err
			} else if kind != "" {
				// ADD unpacks a local archive into the destination directory.
				if err := c.mkdirAll(into); err != nil {
					return err
				}
				if err := c.unpack(src, kind, into); err != nil {
					return fmt.Errorf("unpacking %s: %w", m.rel, err)
				}
				continue
			}
		}
		if fi.IsDir() {
			if _, err := c.stat(into); err == nil {
				// Into an existing directory: merge, keeping its metadata.
				if err := c.copyDirContents(src, m.rel, "", into); err != nil {
					return err
				}
				continue
			}
			// As in BuildKit, a new destination directory is made like a
			// missing parent: 0755 (or an octal --chmod's permission
			// bits), owned by the --chown user or root; the source
			// directory's own mode and owner are not copied.
			if err := c.mkdirAll(into); err != nil {
				return err
			}
			if err := c.chmodNewDir(into); err != nil {
				return err
			}
			if err := c.copyDirContents(src, m.rel, "", into); err != nil {
				return err
			}
			continue
		}
		if c.excluded(path.Base(m.rel)) {
			continue
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
		if err := c.copyEntry(src, fi, m.rel, path.Base(m.rel), target); err != nil {
			return err
		}
	}
	destIsDir = destIsDir || len(o.op.Inline) > 1
	for _, f := range o.op.Inline {
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

type copier struct {
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

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	return writeFile(dst, in)
}

type mkdirOp struct {
	w  *Worker
	op llb.MkdirOp
	v  *llb.Vertex
}

func (o *mkdirOp) CacheKey(ctx context.Context, in []digest.Digest) (digest.Digest, error) {
	return opKey(o.op, in), nil
}

func (o *mkdirOp) Run(ctx context.Context, inputs []solver.Result, _ io.Writer) (solver.Result, error) {
	parent := inputs[0].Snapshot
	id, mounts, err := o.w.newLayer(parent)
	if err != nil {
		return solver.Result{}, err
	}
	err = o.w.Snapshots.WithMounts(ctx, [][]snapshot.Mount{mounts}, func(roots []string) error {
		c := &copier{root: roots[0]}
		if o.op.Chown != "" {
			uid, gid, err := executor.LookupOwner(roots[0], o.op.Chown)
			if err != nil {
				return fmt.Errorf("user %s: %w", o.op.Chown, err)
			}
			c.uid, c.gid = uid, gid
		}
		return c.mkdirAll(o.op.Path)
	})
	if err != nil {
		o.w.Snapshots.Remove(id)
		return solver.Result{}, err
	}
	return o.w.commit(id, parent, o.v.Meta().Name)
}

type localOp struct {
	op llb.LocalOp
	v  *llb.Vertex
}

func (o *localOp) CacheKey(context.Context, []digest.Digest) (digest.Digest, error) {
	return o.v.Digest(), nil
}

func (o *localOp) Run(context.Context, []solver.Result, io.Writer) (solver.Result, error) {
	return solver.Result{Dir: o.op.Dir}, nil
}

// Cacheable is false: the context is read in place on every build.
func (o *localOp) Cacheable() bool { return false }
