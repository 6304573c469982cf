package build_test

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/solver"
)

const sharedBaseDockerfile = `FROM %s AS base
RUN sleep 2 && cat /proc/sys/kernel/random/uuid > /stamp
FROM base AS a
RUN sleep 1 && echo a > /a
FROM base AS b
RUN sleep 1 && echo b > /b
FROM base AS c
RUN sleep 1 && echo c > /c
`

// TestBuildManySharedBase builds three targets sharing a base stage in one
// solve: the base step runs once (the three images hold the same stamp,
// and it completed once), each target sees it in its own progress, and
// the targets' own steps run at the same time.
func TestBuildManySharedBase(t *testing.T) {
	base := busyboxBase(t)
	st := openState(t, t.TempDir())
	ctxDir := t.TempDir()
	df := []byte(fmt.Sprintf(sharedBaseDockerfile, base))
	sp := &spans{start: map[string]time.Time{}, end: map[string]time.Time{}}
	names := []string{"a", "b", "c"}
	var opts []build.Options
	var evs []*events
	all := newEvents()
	numbers := &stepNumbers{byName: map[string]map[int]bool{}}
	for _, n := range names {
		ev := newEvents()
		evs = append(evs, ev)
		opts = append(opts, build.Options{ContextDir: ctxDir, Dockerfile: df, Target: n, Parallelism: 3,
			Progress: multi{ev, sp, all, numbers}})
	}
	res, err := st.BuildMany(t.Context(), opts)
	if err != nil {
		t.Fatal(err)
	}
	baseStep := "[base 2/2] RUN sleep 2 && cat /proc/sys/kernel/random/uuid > /stamp"
	var stamp string
	for i, r := range res {
		files := builtFiles(t, st, r.Manifest)
		s := files["stamp"].content
		if s == "" {
			t.Fatalf("target %s: no /stamp in %v", names[i], files)
		}
		if stamp != "" && s != stamp {
			t.Errorf("target %s has stamp %q, target a %q: the base stage ran more than once", names[i], s, stamp)
		}
		stamp = s
		checkContent(t, files, names[i], names[i])
		if !slices.Contains(evs[i].ran(), baseStep) {
			t.Errorf("target %s's progress did not show the base step: %v", names[i], evs[i].ran())
		}
	}
	// Each event reaches the three targets' progress: one run is 3 events.
	if n := completed(all, baseStep); n != 3 {
		t.Errorf("base step completed %d times in the targets' progress, want 3 (once, seen by each of 3)", n)
	}
	// Each target's export is a step of its own number, after all others.
	if ex := numbers.byName["exporting"]; len(ex) != 3 {
		t.Errorf("export step numbers %v, want 3 different", ex)
	}
	for name, ns := range numbers.byName {
		for n := range ns {
			for other, ons := range numbers.byName {
				if other != name && ons[n] {
					t.Errorf("step #%d is both %q and %q", n, name, other)
				}
			}
		}
	}
	steps := map[string]string{}
	for _, n := range names {
		steps[n] = fmt.Sprintf("[%s 2/2] RUN sleep 1 && echo %s > /%s", n, n, n)
		if sp.start[steps[n]].IsZero() {
			t.Fatalf("step of %s not seen: %v", n, sp.start)
		}
		if sp.start[steps[n]].Before(sp.end[baseStep]) {
			t.Errorf("target %s's step started before the base step ended", n)
		}
	}
	for _, x := range names {
		for _, y := range names {
			if x != y && !sp.start[steps[x]].Before(sp.end[steps[y]]) {
				t.Errorf("target %s's step started after %s's ended: the targets did not run at once", x, y)
			}
		}
	}
}

// TestBuildManyFailureCancels fails one target while another is still
// running: the bake's error names the failed one, and the other is
// cancelled rather than waited for.
func TestBuildManyFailureCancels(t *testing.T) {
	base := busyboxBase(t)
	st := openState(t, t.TempDir())
	ctxDir := t.TempDir()
	df := []byte(fmt.Sprintf("FROM %s AS slow\nRUN sleep 20\nFROM %s AS bad\nRUN exit 3\n", base, base))
	ev := newEvents()
	begin := time.Now()
	res, err := st.BuildMany(t.Context(), []build.Options{
		{ContextDir: ctxDir, Dockerfile: df, Target: "slow", Parallelism: 2, Progress: ev},
		{ContextDir: ctxDir, Dockerfile: df, Target: "bad", Parallelism: 2},
	})
	var te *build.TargetError
	if !errors.As(err, &te) || te.Index != 1 {
		t.Fatalf("err = %v, want the failure of target 1 (bad)", err)
	}
	if res[0] != nil || slices.Contains(ev.ran(), "[slow 2/2] RUN sleep 20") {
		t.Errorf("target slow finished although target bad failed")
	}
	if took := time.Since(begin); took > 15*time.Second {
		t.Errorf("the failed bake took %v: the other target was waited for, not cancelled", took)
	}
}

// multi sends each event to several progress receivers.
type multi []solver.Progress

func (m multi) Event(e solver.Event) {
	for _, p := range m {
		p.Event(e)
	}
}

// stepNumbers records the numbers each step name was shown with.
type stepNumbers struct {
	mu     sync.Mutex
	byName map[string]map[int]bool
}

func (s *stepNumbers) Event(e solver.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.byName[e.Name] == nil {
		s.byName[e.Name] = map[int]bool{}
	}
	s.byName[e.Name][e.Index] = true
}

// completed counts the completed events of step name.
func completed(ev *events, name string) int {
	ev.mu.Lock()
	defer ev.mu.Unlock()
	n := 0
	for _, k := range ev.kinds[name] {
		if k == solver.Completed {
			n++
		}
	}
	return n
}
