package build

import (
	"cmp"
	"context"
	"runtime"
	"time"

	"github.com/builder-dev/builder/build/export"
	"github.com/builder-dev/builder/build/multiarch"
	"github.com/builder-dev/builder/build/resolve"
	"github.com/builder-dev/builder/build/share"
	"github.com/builder-dev/builder/build/stephistory"
	"github.com/builder-dev/builder/executor"
	"github.com/builder-dev/builder/frontend/dockerfile"
	"github.com/builder-dev/builder/gc"
	"github.com/builder-dev/builder/llb"
	"github.com/builder-dev/builder/solver"
	"github.com/builder-dev/builder/solver/ops"
	"github.com/builder-dev/builder/source"
	"github.com/builder-dev/builder/source/localctx"
	"github.com/builder-dev/builder/source/regping"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"
)

// TargetError is the failure of one build of BuildMany; the others were
// cancelled.
type TargetError struct {
	Index int
	Err   error
}

func (e *TargetError) Error() string { return e.Err.Error() }
func (e *TargetError) Unwrap() error { return e.Err }

// target is one build of a solve: its options, lowered graphs, session,
// and what it keeps of its steps.
type target struct {
	opt     Options
	started time.Time
	fopt    dockerfile.Options
	epoch   *time.Time
	fe      *dockerfile.Result
	more    []platformImage
	sess    *ops.Session
	steps   *stepUsages
	history *stephistory.History
	pushes  *export.Pushes
}

// prepare checks opt and lowers its Dockerfile, for every platform.
func (s *State) prepare(ctx context.Context, opt Options) (*target, error) {
	t := &target{opt: opt, started: time.Now().UTC()}
	if t.opt.Keychain == nil {
		t.opt.Keychain = source.Keychain
	}
	var err error
	if t.fopt, t.epoch, err = s.frontendOptions(ctx, t.opt); err != nil {
		return nil, err
	}
	localctx.Prewalk(ctx, t.fopt.ContextDir, t.fopt.Excludes, s.DB.FileSums())
	// One memo for every platform: the checks and the first platform's
	// lowering have looked the others' base images up already.
	resolver := resolve.NewMemo(resolve.LocalFirst{Images: s.Images, Remote: s.Registries, RegistryOnly: t.opt.Pull})
	if t.fe, t.sess, err = s.lower(ctx, t.opt, t.fopt, resolver); err != nil {
		return nil, err
	}
	if t.more, err = s.lowerMore(ctx, t.opt, t.fopt, resolver); err != nil {
		return nil, err
	}
	t.steps = &stepUsages{next: t.opt.Progress}
	t.history = stephistory.New(s.DB, t.fopt.ContextDir+"\x00"+opt.DockerfilePath+"\x00"+opt.DockerfileName)
	return t, nil
}

// roots are the target's graphs, one per platform.
func (t *target) roots() []*llb.Vertex {
	roots := []*llb.Vertex{t.fe.Root}
	for _, m := range t.more {
		roots = append(roots, m.fe.Root)
	}
	return roots
}

// BuildMany builds every opts' Dockerfile in one solve, as `bake` does: a
// step that several builds share runs once, and independent steps of all
// builds run at once within the largest Parallelism. Each build keeps its
// own outputs, tags, progress and result. The first failure cancels the
// others and is returned as a *TargetError.
func (s *State) BuildMany(ctx context.Context, opts []Options) ([]*Result, error) {
	// A registry is pinged once per build: by the base's resolution or a
	// push. The context's walk may start before the base is resolved.
	ctx = localctx.WithPrewalks(regping.WithMemo(ctx))
	// The inits started ahead for the steps end with the last build.
	defer executor.Building()()
	ctx, use, err := s.GC.StartUse(ctx, s.worker) // before lowering: its lease covers base images
	if err != nil {
		return nil, err
	}
	defer s.GC.FinishUse(ctx, use, opts[0].GC, opts[0].Warn)
	// The pushes ask what their tags name while the targets lower and solve.
	pushes := make([]*export.Pushes, len(opts))
	for i, opt := range opts {
		opt.Keychain = cmp.Or(opt.Keychain, source.Keychain)
		pushes[i] = export.StartPushes(ctx, s.exportStores(), exportOptions(opt, nil, use))
		defer pushes[i].Stop()
	}
	// Lowering resolves base images: the targets do it at once.
	targets := make([]*target, len(opts))
	var pg errgroup.Group
	for i, opt := range opts {
		pg.Go(func() (err error) {
			if targets[i], err = s.prepare(ctx, opt); err != nil {
				return &TargetError{Index: i, Err: err}
			}
			return nil
		})
	}
	if err := pg.Wait(); err != nil {
		return nil, err
	}
	parallelism := 0
	for i, t := range targets {
		t.pushes = pushes[i]
		if err := s.useCacheFrom(ctx, t.opt, use, t.sess); err != nil {
			return nil, &TargetError{Index: i, Err: err}
		}
		parallelism = max(parallelism, t.opt.Parallelism)
	}
	// Targets whose sessions give a step they share different secrets or
	// SSH agents are solved apart, so that the step runs with each's own.
	solvers := make([]*solver.Solver, len(targets))
	// One admission for all groups: k groups solved at once run the steps
	// one solver would, not k times as many.
	adm := newAdmission(parallelism)
	for _, grp := range share.Groups(len(targets), func(i int) []*llb.Vertex { return targets[i].roots() },
		func(i, j int, v *llb.Vertex) bool { return share.SameSession(targets[i].sess, targets[j].sess, v) }) {
		ts := make([]*target, len(grp))
		for k, i := range grp {
			ts[k] = targets[i]
		}
		sv := newSolver(s.worker, use, ts, parallelism, opts[0].StepTimeout)
		sv.ShareAdmission(adm)
		for _, i := range grp {
			solvers[i] = sv
		}
	}
	out := make([]*Result, len(targets))
	eg, ectx := errgroup.WithContext(ctx)
	for i, t := range targets {
		eg.Go(func() error {
			var err error
			if out[i], err = s.solveAndExport(ectx, t, solvers[i], use); err != nil {
				return &TargetError{Index: i, Err: err}
			}
			return nil
		})
	}
	err = eg.Wait()
	// What ran is worth remembering even when a step failed.
	for _, t := range targets {
		if ferr := t.history.Flush(); err == nil && ferr != nil {
			err = ferr
		}
	}
	return out, err
}

// newAdmission admits parallelism steps; by default as many as CPUs, and
// more while the running ones wait (sleep, network, disk) rather than
// compute, at most 4 per CPU.
func newAdmission(parallelism int) *solver.Admission {
	if parallelism > 0 {
		return solver.NewAdmission(parallelism, parallelism)
	}
	return solver.NewAdmission(runtime.NumCPU(), 4*runtime.NumCPU())
}

// newSolver makes the solver of targets solved together.
func newSolver(w *ops.Worker, use *gc.Use, targets []*target, parallelism int, stepTimeout time.Duration) *solver.Solver {
	g := newGraphs(targets)
	sv := solver.New(g.ops(w), use, g, cmp.Or(max(parallelism, 0), runtime.NumCPU()))
	sv.SetHistory(g)
	sv.SetStepTimeout(stepTimeout)
	if len(targets) > 1 {
		// The export step's number follows its graph's; in one solve the
		// numbers go on over all graphs, so each export gets its own.
		for i, t := range targets {
			t.opt.Progress = share.Renumber{Next: t.opt.Progress, From: share.CountVertices(t.roots()) + 1, To: len(g.owners) + 1 + i}
		}
	}
	return sv
}

// solveAndExport solves a target and writes its image and cache to its
// outputs.
func (s *State) solveAndExport(ctx context.Context, t *target, sv *solver.Solver, use *gc.Use) (*Result, error) {
	// Several platforms, or attestations, make an index.
	if len(t.more) > 0 || t.opt.attests() {
		return s.solvePlatforms(ctx, t, sv, use)
	}
	res, err := multiarch.Solve(ctx, sv, t.roots(), nil)
	if err != nil {
		return nil, err
	}
	eopt := exportOptions(t.opt, t.epoch, use)
	eopt.Pushes = t.pushes
	image := export.Image{Platform: t.fopt.TargetPlatform, Root: t.fe.Root, Config: t.fe.Image, Top: res[0].Snapshot}
	done := s.solve(sv, t.fe.Root, res[0].Snapshot, t.epoch, t.sess)
	if eopt.InlineCache, err = s.inlineCache(ctx, t.opt, done); err != nil {
		return nil, err
	}
	out, err := export.Single(ctx, s.exportStores(), eopt, image)
	if err != nil {
		return nil, err
	}
	if err := s.exportCache(ctx, t.opt, done, t.epoch); err != nil {
		return nil, err
	}
	return result(out, t.steps), nil
}

// graphs tells, for a solve of several targets, which targets each vertex
// and step belongs to: a vertex's events go to every target whose graph
// holds it, it runs with the session (secrets, SSH) of the first such
// target, and its step is explained from that target's history.
type graphs struct {
	targets []*target
	owners  map[digest.Digest][]*target
	steps   map[string]*target
}

func newGraphs(targets []*target) *graphs {
	g := &graphs{targets: targets, owners: map[digest.Digest][]*target{}, steps: map[string]*target{}}
	for _, t := range targets {
		llb.Walk(t.roots(), func(v *llb.Vertex) error {
			d := v.Digest()
			if n := len(g.owners[d]); n == 0 || g.owners[d][n-1] != t {
				g.owners[d] = append(g.owners[d], t)
			}
			// A step ID names a step of one Dockerfile in one context: two
			// targets that use it in different scopes have no history of it.
			if id := v.Meta().StepID; id != "" {
				if prev, seen := g.steps[id]; !seen {
					g.steps[id] = t
				} else if prev != nil && prev.history.Scope() != t.history.Scope() {
					g.steps[id] = nil
				}
			}
			return nil
		})
	}
	return g
}

func (g *graphs) owner(d digest.Digest) *target {
	if ts := g.owners[d]; len(ts) > 0 {
		return ts[0]
	}
	return g.targets[0]
}

// ops maps a vertex to its op, with its first target's session.
func (g *graphs) ops(w *ops.Worker) func(*llb.Vertex) (solver.Op, error) {
	return func(v *llb.Vertex) (solver.Op, error) {
		return w.OpsFor(g.owner(v.Digest()).sess)(v)
	}
}

// Event implements solver.Progress.
func (g *graphs) Event(e solver.Event) {
	ts := g.owners[e.Vertex]
	if len(ts) == 0 {
		ts = g.targets[:1]
	}
	for _, t := range ts {
		t.steps.Event(e)
	}
}

// Previous and Remember implement solver.History.
func (g *graphs) Previous(stepID string) (solver.StepRecord, bool) {
	if t := g.steps[stepID]; t != nil {
		return t.history.Previous(stepID)
	}
	return solver.StepRecord{}, false
}

func (g *graphs) Remember(stepID string, rec solver.StepRecord) {
	if t := g.steps[stepID]; t != nil {
		t.history.Remember(stepID, rec)
	}
}
