package ops

import (
	"context"
	"fmt"
	"io"

	"github.com/builder-dev/builder/executor"
	"github.com/builder-dev/builder/internal/archive"
	"github.com/builder-dev/builder/llb"
	"github.com/builder-dev/builder/snapshot"
	"github.com/builder-dev/builder/solver"
	"github.com/builder-dev/builder/solver/ops/filecopy"
	"github.com/builder-dev/builder/source/localctx"
	"github.com/opencontainers/go-digest"
)

type copyOp struct {
	w  *Worker
	op llb.CopyOp
	v  *llb.Vertex
	// parts give what the last CacheKey covered, made only when explaining.
	parts []func() []solver.Part
	// extra holds the context checksums CacheKey computed.
	extra []string
	tree  *localctx.Tree // the context they are of, which Run copies from
}

// local returns the context a COPY reads, if its source is the context.
func (o *copyOp) local() (llb.LocalOp, bool) {
	if len(o.v.Inputs()) < 2 || o.v.Inputs()[1] == nil {
		return llb.LocalOp{}, false
	}
	l, ok := o.v.Inputs()[1].Op().(llb.LocalOp)
	return l, ok
}

// CacheKey adds, for a copy from the context, a sum of exactly the files each source selects.
func (o *copyOp) CacheKey(ctx context.Context, in []digest.Digest) (digest.Digest, error) {
	l, ok := o.local()
	if !ok {
		return opKey(o.op, in, filecopy.XattrsKeyParts(len(in) > 1)...), nil
	}
	if o.extra != nil {
		// Asked again with inputs' contents for keys: the files are the same.
		return opKey(o.op, in, o.extra...), nil
	}
	tree, err := localctx.NewTree(l.Dir, l.Excludes)
	if err != nil {
		return "", err
	}
	// Verify: the copy fails on a file that changed since its checksum.
	tree.Sums, tree.Verify = o.w.DB.FileSums(), true
	tree.UsePrewalk(ctx)
	excludes, err := filecopy.NewExcludes(o.op.Excludes)
	if err != nil {
		return "", err
	}
	parts := []string{}
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
			o.parts = append(o.parts, func() []solver.Part { return solver.FileParts(m, sum, files()) })
		}
	}
	o.extra, o.tree = parts, tree
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
	excludes, err := filecopy.NewExcludes(o.op.Excludes)
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
		// The copy keeps xattrs: a source rebuilt with others reruns it.
		tree.Xattrs = filecopy.AppendXattrs
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
	parts := []solver.Part{{Name: "instruction", Value: string(mustJSON(o.op))}}
	for _, p := range o.parts {
		parts = append(parts, p()...)
	}
	return parts
}

func (o *copyOp) Run(ctx context.Context, inputs []solver.Result, _ io.Writer) (solver.Result, error) {
	defer func() { o.tree = nil }() // its checksums' entries are needed only by this copy
	parent := inputs[0].Snapshot
	id, mounts, err := o.w.newLayer(ctx, parent)
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
		tree, err := o.tree, error(nil)
		switch {
		case fromContext && tree == nil:
			tree, err = localctx.NewTree(l.Dir, l.Excludes)
		case fromTree:
			tree, err = localctx.NewTree(roots[1], nil)
		}
		if err != nil {
			return err
		}
		chown, err := lookupOwner(roots[0], o.op.Chown)
		if err != nil {
			return fmt.Errorf("--chown=%s: %w", o.op.Chown, err)
		}
		return filecopy.Copy(ctx, roots[0], tree, o.op, fromTree, chown)
	})
	if err != nil {
		o.w.Snapshots.Remove(id)
		return solver.Result{}, err
	}
	return o.w.commit(id, parent, o.v.Meta().Name)
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
	id, mounts, err := o.w.newLayer(ctx, parent)
	if err != nil {
		return solver.Result{}, err
	}
	err = o.w.Snapshots.WithMounts(ctx, [][]snapshot.Mount{mounts}, func(roots []string) error {
		owner, err := lookupOwner(roots[0], o.op.Chown)
		if err != nil {
			return fmt.Errorf("user %s: %w", o.op.Chown, err)
		}
		return filecopy.Mkdir(roots[0], o.op.Path, owner)
	})
	if err != nil {
		o.w.Snapshots.Remove(id)
		return solver.Result{}, err
	}
	return o.w.commit(id, parent, o.v.Meta().Name)
}

// lookupOwner resolves a --chown user in the tree at root; nil for none.
func lookupOwner(root, chown string) (*archive.Owner, error) {
	if chown == "" {
		return nil, nil
	}
	uid, gid, err := executor.LookupOwner(root, chown)
	if err != nil {
		return nil, err
	}
	return &archive.Owner{UID: uid, GID: gid}, nil
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
