package build_test

import (
	"sync"
	"testing"
	"time"

	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/internal/testutil"
	"github.com/builder-dev/builder/solver"
)

// spans records when each step started and ended.
type spans struct {
	mu    sync.Mutex
	start map[string]time.Time
	end   map[string]time.Time
}

func (s *spans) Event(e solver.Event) {
	s.mu.Lock()
	defer s.mu.Unlock()
	switch e.Kind {
	case solver.Started:
		s.start[e.Name] = e.Time
	case solver.Completed:
		s.end[e.Name] = e.Time
	}
}

// TestIndependentStagesRunInParallel builds two stages that each sleep and
// checks from the step timestamps that they ran at the same time.
func TestIndependentStagesRunInParallel(t *testing.T) {
	testutil.RequiresRoot(t)
	reg := testutil.InProcessRegistry(t)
	base := reg + "/busybox:1"
	testutil.PushImage(t, testutil.BusyboxImage(t), base)
	st := openState(t, t.TempDir())
	df := []byte(`FROM ` + base + ` AS a
RUN sleep 1 && echo a > /a
FROM ` + base + ` AS b
RUN sleep 1 && echo b > /b
FROM ` + base + `
COPY --from=a /a /a
COPY --from=b /b /b
`)
	sp := &spans{start: map[string]time.Time{}, end: map[string]time.Time{}}
	begin := time.Now()
	if _, err := st.Build(t.Context(), build.Options{ContextDir: t.TempDir(), Dockerfile: df, Progress: sp, Parallelism: 2}); err != nil {
		t.Fatal(err)
	}
	took := time.Since(begin)
	a, b := "[a 2/2] RUN sleep 1 && echo a > /a", "[b 2/2] RUN sleep 1 && echo b > /b"
	if sp.start[a].IsZero() || sp.start[b].IsZero() {
		t.Fatalf("steps not seen: %v", sp.start)
	}
	// Each sleeps 1 s: run one after the other they could not overlap.
	if !(sp.start[a].Before(sp.end[b]) && sp.start[b].Before(sp.end[a])) {
		t.Errorf("stage a ran %v–%v and stage b %v–%v: they did not overlap", sp.start[a], sp.end[a], sp.start[b], sp.end[b])
	}
	t.Logf("build took %v", took)
}
