// Package ops implements the llb ops for the solver: pulling base images,
// reading the build context, running processes in the sandbox and copying
// files, each producing a snapshot on top of its input's chain. It is the one
// place where the executor, the snapshotter and the metadata meet.
package ops

import (
	"context"
	"errors"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/builder-dev/builder/cache"
	"github.com/builder-dev/builder/executor"
	"github.com/builder-dev/builder/llb"
	"github.com/builder-dev/builder/snapshot"
	"github.com/builder-dev/builder/solver"
	"github.com/builder-dev/builder/solver/ops/durable"
	"github.com/builder-dev/builder/solver/ops/layerid"
	"github.com/builder-dev/builder/source"
	"github.com/opencontainers/go-digest"
)

// Worker holds what ops need: the state dir's stores and the sources.
type Worker struct {
	DB         *cache.DB
	Snapshots  snapshot.Snapshotter
	Registries *source.Registries
	Puller     *source.Puller
	// TmpDir holds per-run scratch directories.
	TmpDir string
	// CacheMounts holds the RUN --mount=type=cache directories.
	CacheMounts string

	// records holds the records of snapshots committed by steps until
	// a flush made them durable (see commit and Record).
	recordsOnce sync.Once
	records     *durable.Records
}

func (w *Worker) recs() *durable.Records {
	w.recordsOnce.Do(func() { w.records = durable.New(w.DB, w.Snapshots) })
	return w.records
}

// Close releases what the Worker's records hold open, and the sandbox
// init started ahead for a next step (with its cgroup).
func (w *Worker) Close() error { executor.DiscardWarm(); return w.recs().Close() }

// Op returns the implementation of v, for solver.New.
func (w *Worker) Op(v *llb.Vertex) (solver.Op, error) {
	switch op := v.Op().(type) {
	case llb.ImageOp:
		return &imageOp{w: w, op: op}, nil
	case llb.LocalOp:
		return &localOp{op: op, v: v}, nil
	case llb.ExecOp:
		return &execOp{w: w, op: op, v: v}, nil
	case llb.CopyOp:
		return &copyOp{w: w, op: op, v: v}, nil
	case llb.MkdirOp:
		return &mkdirOp{w: w, op: op, v: v}, nil
	case llb.HTTPOp:
		return &httpOp{w: w, op: op, v: v}, nil
	case llb.GitOp:
		return &gitOp{w: w, op: op, v: v}, nil
	}
	return nil, fmt.Errorf("no implementation for op %s", v.Op().Kind())
}

// Lookup implements solver.Cache: a record counts only while its snapshot
// chain is complete on disk.
func (w *Worker) Lookup(ctx context.Context, key digest.Digest) (solver.Result, bool, error) {
	r, err := w.DB.Lookup(ctx, key)
	if errors.Is(err, cache.ErrNotFound) {
		return solver.Result{}, false, nil
	}
	if err != nil {
		return solver.Result{}, false, err
	}
	var content digest.Digest
	if r.Snapshot != "" {
		chain, err := w.DB.Chain(r.Snapshot)
		if err != nil {
			return solver.Result{}, false, nil
		}
		for _, s := range chain {
			if !w.Snapshots.Exists(s.ID) {
				return solver.Result{}, false, nil
			}
		}
		content = layerid.Chain(chain)
	}
	return solver.Result{Snapshot: r.Snapshot, Content: content}, true, nil
}

// Record implements solver.Cache: the record of the snapshot the step
// committed, if it is not stored yet, is stored with the keys in one
// transaction, after a flush that made the layer durable; steps that
// finish meanwhile share the flush and the transaction (package durable).
// If it fails, no later step starts on the snapshot, and it is removed
// once no step can be on it (durable.Records.Close at the latest).
func (w *Worker) Record(ctx context.Context, r solver.Result, keys ...digest.Digest) error {
	return w.recs().Record(cache.Result{Snapshot: r.Snapshot, Created: time.Now().UTC()}, keys...)
}

// Lowers returns the layer directories' ids of top's chain, top-most first,
// leaving out empty layers.
func (w *Worker) Lowers(top string) ([]string, error) {
	if top == "" {
		return nil, nil
	}
	chain, err := w.recs().Chain(top)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, s := range chain {
		if !s.Empty {
			ids = append(ids, s.ID)
		}
	}
	return ids, nil
}

// newLayer prepares a fresh snapshot on top of parent and returns its id and
// read-write mounts.
func (w *Worker) newLayer(ctx context.Context, parent string) (string, []snapshot.Mount, error) {
	lowers, err := w.Lowers(parent)
	if err != nil {
		return "", nil, err
	}
	id, err := w.DB.NewSnapshotID(ctx)
	if err != nil {
		return "", nil, err
	}
	w.recs().Writing(id) // before the layer is written: its flush must see errors
	if err := w.Snapshots.Prepare(id, lowers...); err != nil {
		return "", nil, err
	}
	return id, w.Snapshots.Mounts(id, lowers), nil
}

// commit seals snapshot id (layerid.Seal) without flushing it, and
// leaves its record to the solver's Record of the step's keys, which
// writes it once a flush made the layer durable: a step costs no flush of
// its own. Until then the build's lease (NewSnapshotID) keeps it from GC.
// On failure it removes the snapshot.
func (w *Worker) commit(id, parent, description string) (solver.Result, error) {
	rec, content, err := w.seal(id, parent, description)
	if err != nil {
		return solver.Result{}, err
	}
	w.recs().Committed(rec)
	return solver.Result{Snapshot: id, Content: content}, nil
}

// commitNow is commit for a snapshot that no key will name (a failed
// step's, kept for inspection): it is recorded at once.
func (w *Worker) commitNow(id, parent, description string) (solver.Result, error) {
	res, err := w.commit(id, parent, description)
	if err == nil {
		err = w.recs().Record(cache.Result{Snapshot: id})
	}
	return res, err
}

// seal seals snapshot id and returns its record and the content digest
// of its chain; on failure it removes the snapshot.
func (w *Worker) seal(id, parent, description string) (cache.Snapshot, digest.Digest, error) {
	empty, content, err := layerid.Seal(context.Background(), w.Snapshots, id)
	if err != nil {
		w.Snapshots.Remove(id)
		return cache.Snapshot{}, "", err
	}
	rec := cache.Snapshot{ID: id, Parent: parent, Empty: empty, Content: content, Description: description, Created: time.Now().UTC()}
	chain := []cache.Snapshot{rec}
	if parent != "" {
		below, err := w.recs().Chain(parent)
		if err != nil {
			w.Snapshots.Remove(id)
			return cache.Snapshot{}, "", err
		}
		chain = append(chain, below...)
	}
	return rec, layerid.Chain(chain), nil
}

func (w *Worker) scratchDir(prefix string) (string, error) {
	if err := os.MkdirAll(w.TmpDir, 0o700); err != nil {
		return "", err
	}
	return os.MkdirTemp(w.TmpDir, prefix)
}

// opKey digests an op with its inputs' keys and extra content parts.
func opKey(op llb.Op, inputKeys []digest.Digest, extra ...string) digest.Digest {
	parts := []string{op.Kind(), string(mustJSON(op))}
	for _, k := range inputKeys {
		parts = append(parts, k.String())
	}
	return llb.DigestStrings(append(parts, extra...)...)
}
