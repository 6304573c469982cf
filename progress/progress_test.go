package progress

import (
	"bytes"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/builder-dev/builder/solver"
)

// progressEvents is a small build as the solver reports it: one cached
// step, one that runs and prints, one that fails.
func progressEvents() []solver.Event {
	t0 := time.Unix(1700000000, 0)
	return []solver.Event{
		{Kind: solver.Cached, Index: 1, Name: "[a 1/3] FROM base", Time: t0},
		{Kind: solver.Started, Index: 2, Name: "[a 2/3] RUN make", Time: t0, Reason: "files changed: main.go modified"},
		{Kind: solver.Log, Index: 2, Name: "[a 2/3] RUN make", Data: []byte("compiling\nlinking\n"), Time: t0},
		{Kind: solver.Completed, Index: 2, Name: "[a 2/3] RUN make", Duration: 1500 * time.Millisecond, Time: t0,
			Usage: &solver.Usage{CPU: 5900 * time.Millisecond, PeakMemory: 412 << 20}},
		{Kind: solver.Started, Index: 3, Name: "[a 3/3] RUN test", Time: t0, Reason: "input changed: RUN make (Dockerfile:2)"},
		{Kind: solver.Failed, Index: 3, Name: "[a 3/3] RUN test", Err: errors.New("exited with code 1"), Time: t0},
	}
}

func TestProgressRenderers(t *testing.T) {
	fail := &solver.VertexError{Instruction: "RUN test", Output: []string{"FAIL: TestX"}, Err: errors.New("exited with code 1")}
	tests := []struct {
		mode string
		want []string
	}{
		{"plain", []string{"#1 [a 1/3] FROM base", "#1 CACHED", "#2 not cached: files changed: main.go modified", "compiling", "#2 DONE 1.5s (cpu 5.9s, peak 412MiB)\n", "#3 ERROR exited with code 1", " > RUN test:", "FAIL: TestX"}},
		{"tty", []string{"CACHED [a 1/3] FROM base", "[a 2/3] RUN make 1.5s (cpu 5.9s, peak 412MiB)", "ERROR [a 3/3] RUN test", " > RUN test:"}},
		{"quiet", nil},
	}
	for _, tt := range tests {
		var out bytes.Buffer
		p, err := New(&out, tt.mode)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range progressEvents() {
			p.Event(e)
		}
		p.Close(fail)
		for _, w := range tt.want {
			if !strings.Contains(out.String(), w) {
				t.Errorf("%s output lacks %q:\n%s", tt.mode, w, out.String())
			}
		}
		if tt.mode == "quiet" && out.Len() != 0 {
			t.Errorf("quiet printed %q", out.String())
		}
	}
}

func TestRawJSONProgress(t *testing.T) {
	var out bytes.Buffer
	p, err := New(&out, "rawjson")
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range progressEvents() {
		p.Event(e)
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != len(progressEvents()) {
		t.Fatalf("%d lines for %d events:\n%s", len(lines), len(progressEvents()), out.String())
	}
	var started jsonEvent
	if err := json.Unmarshal([]byte(lines[1]), &started); err != nil {
		t.Fatal(err)
	}
	if started.Kind != "started" || started.Step != 2 || started.Reason != "files changed: main.go modified" || started.Time != "2023-11-14T22:13:20Z" {
		t.Errorf("started event = %+v", started)
	}
	var completed jsonEvent
	json.Unmarshal([]byte(lines[3]), &completed)
	if u := completed.Usage; u == nil || u.CPU != 5.9 || u.PeakMemory != 412<<20 || u.ReadBytes != 0 {
		t.Errorf("completed event usage = %+v", u)
	}
	var failed jsonEvent
	json.Unmarshal([]byte(lines[5]), &failed)
	if failed.Kind != "failed" || failed.Error != "exited with code 1" {
		t.Errorf("failed event = %+v", failed)
	}
}

func TestExplainSummary(t *testing.T) {
	var out, summary bytes.Buffer
	p, _ := New(&out, "plain")
	for _, e := range progressEvents() {
		p.Event(e)
	}
	p.(*plainProgress).Explain(&summary)
	for _, w := range []string{"[a 2/3] RUN make: files changed: main.go modified", "[a 3/3] RUN test: input changed: RUN make (Dockerfile:2)"} {
		if !strings.Contains(summary.String(), w) {
			t.Errorf("explain summary lacks %q:\n%s", w, summary.String())
		}
	}
}
