package ops

import (
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/builder-dev/builder/internal/testutil"
	"github.com/builder-dev/builder/llb"
	"github.com/builder-dev/builder/solver"
	"github.com/builder-dev/builder/source/localctx"
)

// editBeforeRun is an op whose Run first runs edit: the context changes
// between the COPY's cache key and its copy.
type editBeforeRun struct {
	solver.Op
	edit func()
}

func (e editBeforeRun) Run(ctx context.Context, in []solver.Result, log io.Writer) (solver.Result, error) {
	e.edit()
	return e.Op.Run(ctx, in, log)
}

// TestCopyOfContextEditedAfterItsKeyFails: a context file edited after the
// COPY's key was computed (as during the base image's resolution) fails
// the step with localctx.ErrChanged, and nothing is recorded: a later
// build of the state the key describes must not get the edited file. A
// build of an unchanged context copies and records its step. Either way
// the step does not keep the context's tree once run. (The check itself is
// covered without root by localctx's TestExpectCheck and, as root of a user
// namespace, filecopy's TestCopyFailsOnContextChangedSinceChecksum.)
func TestCopyOfContextEditedAfterItsKeyFails(t *testing.T) {
	testutil.RequiresHostRoot(t)
	dir := t.TempDir()
	db, snaps := openStores(t, dir)
	w := &Worker{DB: db, Snapshots: snaps, TmpDir: filepath.Join(dir, "tmp")}
	ctxDir := t.TempDir()
	x := filepath.Join(ctxDir, "x")
	if err := os.WriteFile(x, []byte("v1"), 0o644); err != nil {
		t.Fatal(err)
	}
	local := llb.NewVertex(llb.LocalOp{Dir: ctxDir}, nil, llb.Meta{Name: "context"})
	cp := llb.NewVertex(llb.CopyOp{Sources: []string{"."}, Dest: "/app/"}, []*llb.Vertex{nil, local}, llb.Meta{Name: "COPY . /app/"})
	solve := func(edit func()) error {
		var copies []*copyOp
		ops := func(v *llb.Vertex) (solver.Op, error) {
			op, err := w.Op(v)
			if err != nil || v != cp {
				return op, err
			}
			copies = append(copies, op.(*copyOp))
			if edit == nil {
				return op, nil
			}
			return editBeforeRun{op, edit}, nil
		}
		_, err := solver.New(ops, w, nil, 1).Solve(t.Context(), cp)
		// The checksums' entries of a large context are not kept past the copy.
		for _, c := range copies {
			if c.tree != nil {
				t.Errorf("the COPY keeps its context's tree after its Run (%v)", err)
			}
		}
		return err
	}
	err := solve(func() {
		time.Sleep(20 * time.Millisecond) // a later clock tick than the key's stat
		if err := os.WriteFile(x, []byte("v2"), 0o644); err != nil {
			t.Error(err)
		}
	})
	if !errors.Is(err, localctx.ErrChanged) {
		t.Fatalf("build with x edited after the COPY's key: %v, want localctx.ErrChanged", err)
	}
	if keys, err := db.Keys(); err != nil || len(keys) != 0 {
		t.Fatalf("the failed COPY recorded %d keys (%v), want none", len(keys), err)
	}
	if err := solve(nil); err != nil {
		t.Fatalf("build of the unchanged context: %v", err)
	}
	if keys, err := db.Keys(); err != nil || len(keys) == 0 {
		t.Fatalf("the COPY of the unchanged context recorded no key (%v)", err)
	}
}
