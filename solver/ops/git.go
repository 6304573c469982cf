package ops

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/builder-dev/builder/llb"
	"github.com/builder-dev/builder/solver"
	"github.com/builder-dev/builder/source/gitrepo"
	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/opencontainers/go-digest"
)

// gitOp checks a git repository out for ADD <repo>. The ref is resolved to
// a commit (git ls-remote) when the cache key is computed; the key is that
// commit with the subdirectory and, when .git is kept, the remote and ref
// (which .git records). Run fetches just that commit (shallow) into a
// scratch directory and moves the tree into a one-layer snapshot, which
// the following copy op copies from.
type gitOp struct {
	w  *Worker
	op llb.GitOp
	v  *llb.Vertex
}

// gitCommit is what a git op's CacheKey resolved.
type gitCommit struct {
	commit, fullRef string
}

func (o *gitOp) resolve(ctx context.Context) (gitCommit, error) {
	commit, fullRef, err := gitrepo.ResolveRef(ctx, o.op.Remote, o.op.Ref)
	if err != nil {
		if ctx.Err() != nil {
			return gitCommit{}, ctx.Err()
		}
		return gitCommit{}, err
	}
	if o.op.Checksum != "" && !strings.HasPrefix(commit, o.op.Checksum) {
		return gitCommit{}, fmt.Errorf("checksum mismatch: --checksum says commit %s, %q is %s", o.op.Checksum, o.op.Ref, commit)
	}
	return gitCommit{commit: commit, fullRef: fullRef}, nil
}

func (o *gitOp) CacheKey(ctx context.Context, _ []digest.Digest) (digest.Digest, error) {
	c, err := o.resolve(ctx)
	if err != nil {
		return "", err
	}
	remember(o.w, o.v, c)
	parts := []string{o.op.Kind(), c.commit, o.op.Subdir}
	if o.op.KeepGitDir {
		parts = append(parts, "keep-git-dir", o.op.Remote, c.fullRef)
	}
	return llb.DigestStrings(parts...), nil
}

func (o *gitOp) Run(ctx context.Context, _ []solver.Result, _ io.Writer) (solver.Result, error) {
	c, ok := recall[gitCommit](o.w, o.v)
	if !ok {
		var err error
		if c, err = o.resolve(ctx); err != nil {
			return solver.Result{}, err
		}
	}
	scratch, err := o.w.scratchDir("git-")
	if err != nil {
		return solver.Result{}, err
	}
	defer os.RemoveAll(scratch)
	if err := gitrepo.Checkout(ctx, o.op.Remote, c.fullRef, c.commit, scratch); err != nil {
		if ctx.Err() != nil {
			return solver.Result{}, ctx.Err()
		}
		return solver.Result{}, err
	}
	top := scratch
	if o.op.Subdir != "" {
		if top, err = securejoin.SecureJoin(scratch, o.op.Subdir); err != nil {
			return solver.Result{}, err
		}
		if fi, err := os.Stat(top); err != nil || !fi.IsDir() {
			return solver.Result{}, fmt.Errorf("no directory %s in the repository at %s", o.op.Subdir, c.commit)
		}
	}
	id, _, err := o.w.newLayer(ctx, "")
	if err != nil {
		return solver.Result{}, err
	}
	if err := o.moveTree(top, o.w.Snapshots.FS(id), top == scratch); err != nil {
		o.w.Snapshots.Remove(id)
		return solver.Result{}, err
	}
	return o.w.commit(id, "", o.v.Meta().Name)
}

// moveTree moves the entries of src into dst (same filesystem: both are
// under the state directory), leaving out .git at the top of the checkout
// unless it is to be kept.
func (o *gitOp) moveTree(src, dst string, isTop bool) error {
	entries, err := os.ReadDir(src)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if isTop && e.Name() == ".git" && !o.op.KeepGitDir {
			continue
		}
		if err := os.Rename(filepath.Join(src, e.Name()), filepath.Join(dst, e.Name())); err != nil {
			return fmt.Errorf("moving the checkout into its layer: %w", err)
		}
	}
	return os.Chmod(dst, 0o755)
}
