package build_test

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/solver"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// holdLastRun holds back the end (completed or failed) of the second RUN
// step of a build (the solve of its platform cannot end) until the export
// has logged a layer, or for at most hold.
type holdLastRun struct {
	events   *events
	hold     time.Duration
	mu       sync.Mutex
	runs     int
	exported chan struct{}
	once     sync.Once
	// timedOut says the export logged nothing while the step was held.
	timedOut bool
}

func (h *holdLastRun) Event(ev solver.Event) {
	h.events.Event(ev)
	if ev.Kind == solver.Log && strings.Contains(string(ev.Data), "compressed") {
		h.once.Do(func() { close(h.exported) })
		return
	}
	if (ev.Kind != solver.Completed && ev.Kind != solver.Failed) || !strings.Contains(ev.Name, "RUN ") {
		return
	}
	h.mu.Lock()
	h.runs++
	last := h.runs == 2
	h.mu.Unlock()
	if !last {
		return
	}
	select {
	case <-h.exported:
	case <-time.After(h.hold):
		h.mu.Lock()
		h.timedOut = true
		h.mu.Unlock()
	}
}

// buildHeld builds df for linux/amd64 and linux/arm64 as tag, holding its
// last RUN step's end until a layer is compressed.
func buildHeld(t *testing.T, st *build.State, df, tag string) (*holdLastRun, error) {
	h := &holdLastRun{events: newEvents(), hold: 20 * time.Second, exported: make(chan struct{})}
	_, err := st.Build(t.Context(), build.Options{
		ContextDir: writeContext(t, nil), Dockerfile: []byte(df), DockerfileName: "Dockerfile",
		Progress: h, Parallelism: 4, Tags: []string{tag},
		Platforms: []ocispec.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}},
	})
	return h, err
}

// TestPlatformsExportEarly: a platform's image is assembled (its layer
// compressed) as soon as that platform is solved, while another platform
// still builds, rather than after the slowest platform: the second
// platform's RUN cannot complete until the first platform's layer is
// logged as compressed.
func TestPlatformsExportEarly(t *testing.T) {
	base := busyboxBase(t)
	df := `FROM --platform=$BUILDPLATFORM ` + base + ` AS b
ARG TARGETARCH
RUN echo $TARGETARCH > /arch
FROM scratch
COPY --from=b /arch /arch
`
	st := openState(t, t.TempDir())
	h, err := buildHeld(t, st, df, "early:1")
	if err != nil {
		t.Fatalf("build: %v\n%s", err, h.events.logs.String())
	}
	if h.runs != 2 {
		t.Fatalf("%d RUN steps completed, want 2 (one per platform): %v", h.runs, h.events.ran())
	}
	if h.timedOut {
		t.Errorf("no layer was compressed while the last platform's RUN was held for %v: the export waited for every platform\n%s", h.hold, h.events.logs.String())
	}
}

// TestPlatformsExportEarlyFailed: when one platform's step fails after
// another platform's image has been assembled, the build fails with that
// step's error and names no image.
func TestPlatformsExportEarlyFailed(t *testing.T) {
	base := busyboxBase(t)
	df := `FROM --platform=$BUILDPLATFORM ` + base + ` AS b
ARG TARGETARCH
RUN if [ $TARGETARCH = arm64 ]; then sleep 0.5; exit 3; fi; echo $TARGETARCH > /arch
FROM scratch
COPY --from=b /arch /arch
`
	st := openState(t, t.TempDir())
	h, err := buildHeld(t, st, df, "early:failed")
	if err == nil || !strings.Contains(err.Error(), "exit code: 3") {
		t.Fatalf("build error %v, want the arm64 RUN's exit code 3\n%s", err, h.events.logs.String())
	}
	if h.timedOut {
		t.Errorf("the amd64 image was not assembled while the arm64 step's failure was held:\n%s", h.events.logs.String())
	}
	if _, ok := st.Images.Lookup("early:failed", ocispec.Platform{OS: "linux", Architecture: "amd64"}); ok {
		t.Errorf("the failed build named an image early:failed")
	}
}
