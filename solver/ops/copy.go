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
	"strconv"
	"strings"

	"github.com/builder-dev/builder/executor"
	"github.com/builder-dev/builder/llb"
	"github.com/builder-dev/builder/snapshot"
	"github.com/builder-dev/builder/solver"
	"github.com/builder-dev/builder/source"
	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sys/unix"
)

type copyOp struct {
	w  *Worker
	op llb.CopyOp
	v  *llb.Vertex
}

func (o *copyOp) local() (llb.LocalOp, bool) {
	src := o.v.Inputs()[1]
	l, ok := src.Op().(llb.LocalOp)
	return l, ok
}

// CacheKey adds, for a copy from the build context, a checksum of exactly
// the files each source selects.
func (o *copyOp) CacheKey(ctx context.Context, in []digest.Digest) (digest.Digest, error) {
	l, ok := o.local()
	if !ok {
		return opKey(o.op, in), nil
	}
	tree, err := source.NewTree(l.Dir, l.Excludes)
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
			sum, err := tree.Checksum(m)
			if err != nil {
				return "", err
			}
			parts = append(parts, m, sum)
		}
	}
	return opKey(o.op, in, parts...), nil
}

func (o *copyOp) Run(ctx context.Context, inputs []solver.Result, _ io.Writer) (solver.Result, error) {
	parent := inputs[0].Snapshot
	id, mounts, err := o.w.newLayer(parent)
	if err != nil {
		return solver.Result{}, err
	}
	sets := [][]snapshot.Mount{mounts}
	l, fromContext := o.local()
	if !fromContext {
		lowers, err := o.w.Lowers(inputs[1].Snapshot)
		if err != nil {
			o.w.Snapshots.Remove(id)
			return solver.Result{}, err
		}
		sets = append(sets, o.w.Snapshots.View(lowers))
	}
	err = o.w.Snapshots.WithMounts(ctx, sets, func(roots []string) error {
		var tree *source.Tree
		var err error
		if fromContext {
			tree, err = source.NewTree(l.Dir, l.Excludes)
		} else {
			tree, err = source.NewTree(roots[1], nil)
		}
		if err != nil {
			return err
		}
		return o.copy(roots[0], tree)
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
func (o *copyOp) copy(root string, tree *source.Tree) error {
	c := &copier{root: root, tree: tree, add: o.op.Add}
	if o.op.Chown != "" {
		uid, gid, err := executor.LookupUser(root, o.op.Chown)
		if err != nil {
			return fmt.Errorf("--chown=%s: %w", o.op.Chown, err)
		}
		c.uid, c.gid = uid, gid
	}
	if o.op.Chmod != "" {
		m, err := strconv.ParseUint(o.op.Chmod, 8, 32)
		if err != nil {
			return fmt.Errorf("--chmod=%s: %w", o.op.Chmod, err)
		}
		mode := fs.FileMode(m) & (fs.ModePerm)
		c.chmod = &mode
	}
	var matches []string
	for _, src := range o.op.Sources {
		m, err := tree.Match(src)
		if err != nil {
			return err
		}
		matches = append(matches, m...)
	}
	dest := path.Clean(o.op.Dest)
	destIsDir := strings.HasSuffix(o.op.Dest, "/") || len(matches) > 1
	if !destIsDir {
		if fi, err := c.stat(dest); err == nil && fi.IsDir() {
			destIsDir = true
		}
	}
	for _, m := range matches {
		src, err := securejoin.SecureJoin(tree.Root, m)
		if err != nil {
			return err
		}
		fi, err := os.Stat(src)
		if err != nil {
			return fmt.Errorf("%s: %w", m, err)
		}
		if c.add && fi.Mode().IsRegular() {
			if kind, err := archiveKind(src); err != nil {
				return err
			} else if kind != "" {
				// ADD unpacks a local archive into the destination directory.
				if err := c.mkdirAll(dest); err != nil {
					return err
				}
				if err := c.unpack(src, kind, dest); err != nil {
					return fmt.Errorf("unpacking %s: %w", m, err)
				}
				continue
			}
		}
		target := dest
		if fi.IsDir() {
			if err := c.mkdirAll(dest); err != nil {
				return err
			}
			if err := c.copyDirContents(src, m, dest); err != nil {
				return err
			}
			continue
		}
		if destIsDir {
			if err := c.mkdirAll(dest); err != nil {
				return err
			}
			target = path.Join(dest, path.Base(m))
		} else if err := c.mkdirAll(path.Dir(dest)); err != nil {
			return err
		}
		if err := c.copyEntry(src, fi, target); err != nil {
			return err
		}
	}
	return nil
}

type copier struct {
	root     string
	tree     *source.Tree
	uid, gid int
	chmod    *fs.FileMode
	add      bool
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

func (c *copier) copyDirContents(src, rel, dest string) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		childRel := path.Join(rel, e.Name())
		if c.tree.Excluded(childRel) {
			if !e.IsDir() {
				continue
			}
			// A pattern like "!dir/keep" may bring back a file below an
			// excluded directory, so look inside.
		}
		fi, err := e.Info()
		if err != nil {
			return err
		}
		if err := c.copyEntry(filepath.Join(src, e.Name()), fi, path.Join(dest, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// copyEntry copies one file, directory (recursively), symlink or special
// file from the host path src to rel in the root.
func (c *copier) copyEntry(src string, fi fs.FileInfo, rel string) error {
	dst, err := c.resolve(rel)
	if err != nil {
		return err
	}
	mode := fi.Mode()
	perm := mode.Perm() | mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)
	if c.chmod != nil {
		perm = *c.chmod
	}
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
		srcRel, _ := filepath.Rel(c.tree.Root, src)
		if err := c.copyDirContents(src, filepath.ToSlash(srcRel), rel); err != nil {
			return err
		}
	case mode.IsRegular():
		if err := c.copyFile(src, dst); err != nil {
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
		st, ok := fi.Sys().(*unix.Stat_t)
		if !ok {
			return fmt.Errorf("%s: unsupported file type %s", src, mode.Type())
		}
		if err := unix.Mknod(dst, st.Mode, int(st.Rdev)); err != nil {
			return &os.PathError{Op: "mknod", Path: dst, Err: err}
		}
	}
	if err := os.Lchown(dst, c.uid, c.gid); err != nil {
		return err
	}
	if mode&fs.ModeSymlink == 0 {
		if err := os.Chmod(dst, perm); err != nil {
			return err
		}
	}
	mtime := fi.ModTime()
	ts := []unix.Timespec{unix.NsecToTimespec(mtime.UnixNano()), unix.NsecToTimespec(mtime.UnixNano())}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, dst, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return &os.PathError{Op: "utimes", Path: dst, Err: err}
	}
	return nil
}

func (c *copier) copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_NOFOLLOW, 0o600)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copying %s: %w", src, err)
	}
	return out.Close()
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
			uid, gid, err := executor.LookupUser(roots[0], o.op.Chown)
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
