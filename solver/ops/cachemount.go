package ops

import (
	"context"
	"errors"
	"fmt"

	"github.com/builder-dev/builder/executor"
	"github.com/builder-dev/builder/llb"
	"github.com/builder-dev/builder/snapshot"
	"github.com/builder-dev/builder/solver"
	"github.com/builder-dev/builder/solver/ops/cachedir"
	"github.com/builder-dev/builder/solver/ops/filecopy"
	"github.com/builder-dev/builder/source/localctx"
)

// cacheMount locks a cache directory for the run (see package cachedir)
// and mounts it.
func (o *execOp) cacheMount(ctx context.Context, rm *runMounts, m llb.ExecMount, inputs []solver.Result) error {
	if o.w.CacheMounts == "" {
		return errors.New("cache mounts need a state directory (Worker.CacheMounts is not set)")
	}
	id := m.ID
	if id == "" {
		id = m.Target
	}
	key := cacheMountKey(m, inputs).Encoded()
	dir, unlock, err := cachedir.Acquire(ctx, o.w.CacheMounts, key, id, m.Sharing)
	if err != nil {
		return err
	}
	rm.release = append(rm.release, unlock)
	if o.sess != nil && o.sess.CacheMounts != nil {
		o.sess.CacheMounts.Add(cachedir.Use{Key: key, ID: id, Sharing: m.Sharing})
	}
	if o.sess != nil && o.sess.RestoreCache != nil {
		if _, err := o.sess.RestoreCache(ctx, key, dir); err != nil {
			return fmt.Errorf("restoring cache %s: %w", id, err)
		}
	}
	if err := o.createCache(ctx, dir, m, inputs); err != nil {
		return fmt.Errorf("creating cache %s: %w", id, err)
	}
	rm.mounts = append(rm.mounts, executor.Mount{Type: executor.MountBind, Source: dir, Target: m.Target, Readonly: m.Readonly})
	return nil
}

// createCache creates the cache directory dir if it does not exist: empty
// or with the files of the mount's `from`, then the mount's owner and mode.
func (o *execOp) createCache(ctx context.Context, dir string, m llb.ExecMount, inputs []solver.Result) error {
	return cachedir.Create(dir, func(tmp string) error {
		if m.Input > 0 && m.Input < len(inputs) {
			if err := o.seedCache(ctx, tmp, m, inputs[m.Input]); err != nil {
				return err
			}
		}
		return setOwnerMode(tmp, m, 0o755)
	})
}

// seedCache copies the mount's source from its `from` file tree into dir.
func (o *execOp) seedCache(ctx context.Context, dir string, m llb.ExecMount, in solver.Result) error {
	rel := cleanRel(m.Source)
	if l, ok := o.mountLocal(m); ok {
		tree, err := localctx.NewTree(l.Dir, l.Excludes)
		if err != nil {
			return err
		}
		return filecopy.CopyTree(ctx, dir, tree, rel)
	}
	lowers, err := o.w.Lowers(in.Snapshot)
	if err != nil {
		return err
	}
	return o.w.Snapshots.WithMounts(ctx, [][]snapshot.Mount{o.w.Snapshots.View(lowers)}, func(roots []string) error {
		tree, err := localctx.NewTree(roots[0], nil)
		if err != nil {
			return err
		}
		tree.Serial = true
		return filecopy.CopyTree(ctx, dir, tree, rel)
	})
}
