// Package solver walks an llb graph: it computes a content cache key per
// vertex, reuses recorded results, and runs what is missing, independent
// vertices in parallel and identical vertices once.
//
// A vertex's key is a digest of its op and its inputs' keys, plus whatever
// content the op reads (the op's CacheKey adds it). Keys are computed without
// running anything, so a fully cached build looks up only the target.
package solver

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/builder-dev/builder/llb"
	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"
)

// Result is what a vertex produced.
type Result struct {
	// Snapshot is the top of the result's layer chain; "" is an empty tree.
	Snapshot string
	// Dir is a host directory, for local sources.
	Dir string
	// Content names what the result holds (for a file tree, a digest of
	// its layers' contents). Steps that use a rebuilt result look their
	// cache up again by it, so a rebuild that produced the same files
	// does not make them run. Empty means the result's cache key.
	Content digest.Digest
}

// Op is the implementation of one vertex.
type Op interface {
	// CacheKey returns the vertex's cache key from its inputs' keys, adding
	// the content it reads beyond them.
	CacheKey(ctx context.Context, inputKeys []digest.Digest) (digest.Digest, error)
	// Run produces the result from the inputs' results, writing the
	// output of any process it runs to log.
	Run(ctx context.Context, inputs []Result, log io.Writer) (Result, error)
}

// Cacheable is implemented by ops whose results may be recorded and reused.
// Sources whose result is a location rather than content (the build context)
// are not.
type Cacheable interface {
	Cacheable() bool
}

// Cache records what keys resolved to.
type Cache interface {
	// Lookup returns a usable result for key, or ok=false.
	Lookup(ctx context.Context, key digest.Digest) (r Result, ok bool, err error)
	// Record stores r under every key, at once: a step's key and its
	// content key cost one metadata write together.
	Record(ctx context.Context, r Result, keys ...digest.Digest) error
}

// LoggingKeyer is an Op whose key needs slow work worth reporting, such as
// downloading an ADD <url> to checksum it: the solver calls CacheKeyLog
// instead of CacheKey, with a writer for progress lines shown under the
// step before it is known whether the step runs.
type LoggingKeyer interface {
	CacheKeyLog(ctx context.Context, inputKeys []digest.Digest, log io.Writer) (digest.Digest, error)
}

// Preparer is an Op told, once its key has missed the cache and before its
// inputs are built, that it is going to run: it can begin slow set-up of
// its own (a sandbox's network) alongside them. A hit never calls it.
type Preparer interface {
	Prepare()
}

// Solver runs graphs. It is safe for concurrent Solve calls.
type Solver struct {
	ops      func(*llb.Vertex) (Op, error)
	cache    Cache
	progress Progress
	adm      *admission

	mu      sync.Mutex
	keys    map[digest.Digest]*once[digest.Digest]
	results map[digest.Digest]*once[Result]
	index   map[digest.Digest]int
	// reported holds the vertices already reported as cached.
	reported map[digest.Digest]bool
	// keyParts holds what each vertex's key covered.
	keyParts map[digest.Digest]func() map[string]string
	history  History
	opsMemo  map[digest.Digest]Op
	// cancelled names the steps stopped because another one failed.
	cancelled []string
	// interrupted names them with their Dockerfile line, for an
	// interrupted build.
	interrupted []string
	// stepTimeout, when positive, bounds each step's Run, and the key
	// of a LoggingKeyer (a download).
	stepTimeout time.Duration
	// recording counts the records recordLater is writing; recorded is
	// signalled when it falls to zero; recordErr is the first failure.
	recording int
	recorded  sync.Cond
	recordErr error
}

// SetStepTimeout makes every step that runs longer than d fail, naming the
// step; zero (the default) sets no limit.
func (s *Solver) SetStepTimeout(d time.Duration) { s.stepTimeout = d }

// errStepTimeout is the cause of a step's context ending at its timeout.
var errStepTimeout = errors.New("step timeout")

// op returns v's implementation, one instance per vertex so that what its
// CacheKey learned is there for its Run.
func (s *Solver) op(v *llb.Vertex) (Op, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if op, ok := s.opsMemo[v.Digest()]; ok {
		return op, nil
	}
	op, err := s.ops(v)
	if err == nil {
		s.opsMemo[v.Digest()] = op
	}
	return op, err
}

// SetHistory makes the solver explain cache misses against h and record
// each step's key in it.
func (s *Solver) SetHistory(h History) { s.history = h }

// New makes a solver. ops maps a vertex to its implementation; parallelism
// bounds how many ops run at once.
func New(ops func(*llb.Vertex) (Op, error), cache Cache, progress Progress, parallelism int) *Solver {
	if parallelism < 1 {
		parallelism = 1
	}
	if progress == nil {
		progress = discard{}
	}
	s := &Solver{
		ops: ops, cache: cache, progress: progress,
		adm:      newAdmission(parallelism),
		keys:     map[digest.Digest]*once[digest.Digest]{},
		results:  map[digest.Digest]*once[Result]{},
		index:    map[digest.Digest]int{},
		reported: map[digest.Digest]bool{},
		keyParts: map[digest.Digest]func() map[string]string{},
		opsMemo:  map[digest.Digest]Op{},
	}
	s.recorded.L = &s.mu
	return s
}

// Solve returns root's result, running whatever is not cached. A nil root is
// the empty tree.
func (s *Solver) Solve(ctx context.Context, root *llb.Vertex) (Result, error) {
	if root == nil {
		return Result{}, nil
	}
	s.mu.Lock()
	llb.Walk([]*llb.Vertex{root}, func(v *llb.Vertex) error {
		if _, ok := s.index[v.Digest()]; !ok {
			s.index[v.Digest()] = len(s.index) + 1
		}
		return nil
	})
	s.mu.Unlock()
	r, err := s.result(ctx, root)
	// The results are what the records name: none is returned before
	// they are written (also when a step failed, so that nothing writes
	// to the state dir after the build).
	if rerr := s.waitRecords(); err == nil {
		err = rerr
	}
	var ve *VertexError
	if errors.As(err, &ve) {
		s.mu.Lock()
		ve.Cancelled = append(ve.Cancelled, s.cancelled...)
		s.mu.Unlock()
	} else if errors.Is(err, context.Canceled) && ctx.Err() != nil {
		// Interrupted (Ctrl-C): say which steps were running.
		s.mu.Lock()
		if len(s.interrupted) > 0 {
			err = fmt.Errorf("interrupted while running %s: %w", strings.Join(s.interrupted, "; "), err)
		}
		s.mu.Unlock()
	}
	return r, err
}

// CacheKey returns v's cache key.
func (s *Solver) CacheKey(ctx context.Context, v *llb.Vertex) (digest.Digest, error) {
	s.mu.Lock()
	o, ok := s.keys[v.Digest()]
	if !ok {
		o = &once[digest.Digest]{}
		s.keys[v.Digest()] = o
	}
	s.mu.Unlock()
	return o.do(func() (digest.Digest, error) {
		op, err := s.op(v)
		if err != nil {
			return "", s.vertexError(v, err)
		}
		inputs := make([]digest.Digest, len(v.Inputs()))
		g, gctx := errgroup.WithContext(ctx)
		for i, in := range v.Inputs() {
			if in == nil {
				continue
			}
			g.Go(func() error {
				k, err := s.CacheKey(gctx, in)
				inputs[i] = k
				return err
			})
		}
		if err := g.Wait(); err != nil {
			return "", err
		}
		var k digest.Digest
		if lk, ok := op.(LoggingKeyer); ok {
			// Slow work (a download): --step-timeout bounds it too.
			keyCtx, cancel := ctx, context.CancelFunc(func() {})
			if s.stepTimeout > 0 {
				keyCtx, cancel = context.WithTimeoutCause(ctx, s.stepTimeout, errStepTimeout)
			}
			k, err = lk.CacheKeyLog(keyCtx, inputs, &logWriter{s: s, v: v})
			if err != nil && ctx.Err() == nil && errors.Is(context.Cause(keyCtx), errStepTimeout) {
				err = fmt.Errorf("timed out after %s (--step-timeout)", s.stepTimeout)
			}
			cancel()
		} else {
			k, err = op.CacheKey(ctx, inputs)
		}
		if err != nil {
			return "", s.vertexError(v, err)
		}
		// Made when an explanation or a new step record asks: a cached
		// step needs neither.
		parts := sync.OnceValue(func() map[string]string {
			var own []Part
			if d, ok := op.(KeyDescriber); ok {
				own = d.KeyParts()
			}
			parts := make(map[string]string, 1+len(own)+len(inputs))
			parts["op"] = llb.DigestStrings(v.Op().Kind()).String()
			for _, p := range own {
				parts[p.Name] = p.Value
			}
			for i, in := range inputs {
				parts[fmt.Sprintf("input:%d", i)] = in.String()
			}
			return parts
		})
		s.mu.Lock()
		s.keyParts[v.Digest()] = parts
		s.mu.Unlock()
		return k, nil
	})
}

func (s *Solver) result(ctx context.Context, v *llb.Vertex) (Result, error) {
	if v == nil {
		return Result{}, nil
	}
	s.mu.Lock()
	o, ok := s.results[v.Digest()]
	if !ok {
		o = &once[Result]{}
		s.results[v.Digest()] = o
	}
	s.mu.Unlock()
	return o.do(func() (Result, error) { return s.build(ctx, v) })
}

func (s *Solver) build(ctx context.Context, v *llb.Vertex) (Result, error) {
	op, err := s.op(v)
	if err != nil {
		return Result{}, s.vertexError(v, err)
	}
	st := step{v: v, op: op, cacheable: true}
	if st.key, err = s.CacheKey(ctx, v); err != nil {
		return Result{}, err
	}
	if c, ok := op.(Cacheable); ok {
		st.cacheable = c.Cacheable()
	}
	useCache := st.cacheable && !v.Meta().IgnoreCache
	if useCache {
		r, ok, err := s.lookup(ctx, v, st.key)
		if err != nil || ok {
			return r, err
		}
	}
	if p, ok := op.(Preparer); ok {
		p.Prepare()
	}

	st.inputs = make([]Result, len(v.Inputs()))
	g, gctx := errgroup.WithContext(ctx)
	for i, in := range v.Inputs() {
		g.Go(func() error {
			r, err := s.result(gctx, in)
			st.inputs[i] = r
			return err
		})
	}
	if err := g.Wait(); err != nil {
		return Result{}, err
	}

	// An input that was rebuilt may hold the same files as before: look
	// the step up again by its inputs' contents.
	if st.contentKey, err = s.contentKey(ctx, v, op, st.inputs); err != nil {
		return Result{}, err
	}
	if useCache && st.contentKey != st.key {
		r, ok, err := s.lookup(ctx, v, st.contentKey)
		if err != nil {
			return Result{}, err
		}
		if ok {
			if err := s.cache.Record(ctx, r, st.key); err != nil {
				return Result{}, s.vertexError(v, fmt.Errorf("recording the result: %w", err))
			}
			return r, nil
		}
	}
	unlock := func() {}
	if useCache {
		// Locked before taking a slot: waiting for another process
		// costs none.
		var r Result
		var ok bool
		if unlock, r, ok, err = s.lockKeys(ctx, v, st.key, st.contentKey); err != nil || ok {
			return r, err
		}
	}
	return s.run(ctx, st, unlock)
}

// step is a vertex that missed the cache, ready to run: its op, its keys
// (by definition and by input contents) and its inputs' results.
type step struct {
	v               *llb.Vertex
	op              Op
	key, contentKey digest.Digest
	cacheable       bool
	inputs          []Result
}

// run runs a step's op when admitted (see admission) and the step timeout,
// reports it, and records its result under both keys (recordLater, which
// calls unlock after; if nothing is recorded, unlock is called on return).
func (s *Solver) run(ctx context.Context, st step, unlock func()) (Result, error) {
	defer func() {
		if unlock != nil {
			unlock()
		}
	}()
	v := st.v
	m, err := s.adm.acquire(ctx)
	if err != nil {
		return Result{}, err
	}
	defer s.adm.release(m)
	start := time.Now()
	s.emit(v, Event{Kind: Started, Time: start, Reason: s.explain(v, st.key)})
	log := &logWriter{s: s, v: v, meter: m}
	runCtx := ctx
	if s.stepTimeout > 0 {
		var cancel context.CancelFunc
		runCtx, cancel = context.WithTimeoutCause(ctx, s.stepTimeout, errStepTimeout)
		defer cancel()
	}
	r, err := st.op.Run(runCtx, st.inputs, log)
	if err != nil && ctx.Err() == nil && errors.Is(context.Cause(runCtx), errStepTimeout) {
		err = fmt.Errorf("timed out after %s (--step-timeout)", s.stepTimeout)
		s.emit(v, Event{Kind: Failed, Err: err, Duration: time.Since(start)})
		return Result{}, s.vertexError(v, err, log.tail()...)
	}
	if err != nil {
		if ctx.Err() != nil {
			// Stopped because another step failed (or the build was
			// interrupted), not by its own fault.
			s.mu.Lock()
			s.cancelled = append(s.cancelled, v.Meta().Name)
			s.interrupted = append(s.interrupted, (&VertexError{Location: v.Meta().Location, Instruction: instruction(v)}).where())
			s.mu.Unlock()
			s.emit(v, Event{Kind: Failed, Err: errors.New("cancelled"), Duration: time.Since(start)})
			return Result{}, ctx.Err()
		}
		s.emit(v, Event{Kind: Failed, Err: err, Duration: time.Since(start), Usage: log.reported()})
		return Result{}, s.vertexError(v, err, log.tail()...)
	}
	if r.Content == "" {
		r.Content = st.contentKey
	}
	if st.cacheable {
		keys := []digest.Digest{st.key}
		if st.contentKey != st.key {
			keys = append(keys, st.contentKey)
		}
		s.recordLater(ctx, v, r, keys, unlock)
		unlock = nil
	}
	s.record(v, st.key)
	s.emit(v, Event{Kind: Completed, Duration: time.Since(start), Usage: log.reported()})
	return r, nil
}

// lookup looks key up and reports a hit as cached.
func (s *Solver) lookup(ctx context.Context, v *llb.Vertex, key digest.Digest) (Result, bool, error) {
	r, ok, err := s.cache.Lookup(ctx, key)
	if err != nil {
		return Result{}, false, s.vertexError(v, fmt.Errorf("cache lookup: %w", err))
	}
	if !ok {
		return Result{}, false, nil
	}
	if r.Content == "" {
		r.Content = key
	}
	s.reportCached(v)
	s.record(v, s.keyOf(v))
	return r, true, nil
}

// ContentKeyer is implemented by ops that can key themselves on exactly
// the content they read from their solved inputs (COPY --from reads a few
// files of another stage), which is finer than the inputs' whole contents.
type ContentKeyer interface {
	// ContentKey returns the key, or "" to use the inputs' contents.
	ContentKey(ctx context.Context, inputs []Result) (digest.Digest, error)
}

// contentKey is v's cache key computed from its inputs' contents instead
// of their keys.
func (s *Solver) contentKey(ctx context.Context, v *llb.Vertex, op Op, inputs []Result) (digest.Digest, error) {
	if ck, ok := op.(ContentKeyer); ok {
		k, err := ck.ContentKey(ctx, inputs)
		if err != nil {
			return "", s.vertexError(v, err)
		}
		if k != "" {
			return llb.DigestStrings("content", k.String()), nil
		}
	}
	contents := make([]digest.Digest, len(inputs))
	same := true
	for i, in := range v.Inputs() {
		if in == nil {
			continue
		}
		k := s.keyOf(in)
		contents[i] = inputs[i].Content
		if contents[i] == "" {
			contents[i] = k
		}
		same = same && contents[i] == k
	}
	if same {
		return s.keyOf(v), nil
	}
	k, err := op.CacheKey(ctx, contents)
	if err != nil {
		return "", s.vertexError(v, err)
	}
	return llb.DigestStrings("content", k.String()), nil
}

// keyOf returns v's already computed cache key.
func (s *Solver) keyOf(v *llb.Vertex) digest.Digest {
	s.mu.Lock()
	o := s.keys[v.Digest()]
	s.mu.Unlock()
	if o == nil {
		return ""
	}
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.val
}

// reportCached reports v and the steps it was built from as cached: a hit
// on v stands for all of them, so none of them is looked up or run.
func (s *Solver) reportCached(v *llb.Vertex) {
	llb.Walk([]*llb.Vertex{v}, func(x *llb.Vertex) error {
		s.mu.Lock()
		seen := s.reported[x.Digest()]
		s.reported[x.Digest()] = true
		s.mu.Unlock()
		if !seen {
			if _, isLocal := x.Op().(llb.LocalOp); !isLocal {
				s.emit(x, Event{Kind: Cached})
			}
		}
		return nil
	})
}

func (s *Solver) emit(v *llb.Vertex, e Event) {
	s.mu.Lock()
	e.Index = s.index[v.Digest()]
	s.mu.Unlock()
	e.Vertex = v.Digest()
	e.Name = v.Meta().Name
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	s.progress.Event(e)
}

// VertexError is a failure of one step, with where it came from.
type VertexError struct {
	Location llb.Location
	// Instruction is the step as written, e.g. "RUN make".
	Instruction string
	// Output holds the last lines the step printed.
	Output []string
	Err    error
	// Cancelled names the steps that were stopped because this one failed.
	Cancelled []string
}

func (e *VertexError) Error() string {
	var b strings.Builder
	if loc := e.Location.String(); loc != "" {
		b.WriteString(loc + ": ")
	}
	if e.Instruction != "" {
		b.WriteString(e.Instruction + ": ")
	}
	b.WriteString(e.Err.Error())
	if len(e.Cancelled) > 0 {
		b.WriteString(" (cancelled: " + strings.Join(e.Cancelled, "; ") + ")")
	}
	return b.String()
}

func (e *VertexError) Unwrap() error { return e.Err }

// where names the step: "Dockerfile:3: RUN make", or what of it is known.
func (e *VertexError) where() string {
	if loc := e.Location.String(); loc != "" && e.Instruction != "" {
		return loc + ": " + e.Instruction
	}
	return e.Location.String() + e.Instruction
}

func (s *Solver) vertexError(v *llb.Vertex, err error, output ...string) error {
	var ve *VertexError
	if errors.As(err, &ve) || errors.Is(err, context.Canceled) {
		return err
	}
	return &VertexError{Location: v.Meta().Location, Instruction: instruction(v), Output: output, Err: err}
}

// instruction is v's name without its "[stage n/m] " prefix: "RUN make".
func instruction(v *llb.Vertex) string {
	name := v.Meta().Name
	if i := strings.Index(name, "] "); strings.HasPrefix(name, "[") && i >= 0 {
		name = name[i+2:]
	}
	return name
}

// once runs a function the first time it is asked and gives every caller
// its result. A failure is not kept: a later caller runs it again.
type once[T any] struct {
	mu   sync.Mutex
	done bool
	val  T
}

func (o *once[T]) do(fn func() (T, error)) (T, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	if o.done {
		return o.val, nil
	}
	v, err := fn()
	if err != nil {
		return v, err
	}
	o.val, o.done = v, true
	return v, nil
}
