package build_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/internal/testutil"
	"github.com/builder-dev/builder/solver"
)

// TestBadInput checks that each kind of broken build names the Dockerfile
// line and what is wrong, leaves nothing behind, and that the next build
// on the same state dir works.
func TestBadInput(t *testing.T) {
	testutil.RequiresRoot(t)
	reg := testutil.InProcessRegistry(t)
	base := reg + "/busybox:1"
	testutil.PushImage(t, testutil.BusyboxImage(t), base)
	root := t.TempDir()
	st := openState(t, root)

	tests := []struct {
		name       string
		dockerfile string
		want       []string
		wantOutput string
	}{
		{"syntax", "FROM " + base + "\nRUN echo ok\nFROMM x\n", []string{"Dockerfile:3", "unknown instruction: FROMM"}, ""},
		{"unknown base", "FROM " + reg + "/nothere:1\n", []string{"Dockerfile:1", reg + "/nothere:1", "not found"}, ""},
		{"missing copy source", "FROM " + base + "\nCOPY present.txt /\nCOPY absent.txt /\n", []string{"Dockerfile:3", "absent.txt", "no such file"}, ""},
		{"failing run", "FROM " + base + "\nRUN echo line one && echo line two >&2 && exit 3\n",
			[]string{"Dockerfile:2", `"/bin/sh -c echo line one && echo line two >&2 && exit 3"`, "did not complete successfully: exit code: 3"}, "line two"},
		{"unknown user", "FROM " + base + "\nUSER nobody-here\nRUN true\n", []string{"Dockerfile:3", "nobody-here"}, ""},
	}
	ctxDir := writeContext(t, map[string]string{"present.txt": "here"})
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := st.Build(t.Context(), build.Options{ContextDir: ctxDir, Dockerfile: []byte(tt.dockerfile), DockerfileName: "Dockerfile"})
			if err == nil {
				t.Fatal("build succeeded")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
			if tt.wantOutput != "" {
				var ve *solver.VertexError
				if !errors.As(err, &ve) || !strings.Contains(strings.Join(ve.Output, "\n"), tt.wantOutput) {
					t.Errorf("error output = %v, want it to contain %q", ve, tt.wantOutput)
				}
			}
			checkNothingLeft(t, root)
		})
	}

	// A cancelled build (Ctrl-C) stops its RUN promptly and leaves nothing.
	ctx, cancel := context.WithCancel(t.Context())
	time.AfterFunc(500*time.Millisecond, cancel)
	start := time.Now()
	_, err := st.Build(ctx, build.Options{ContextDir: ctxDir, Dockerfile: []byte("FROM " + base + "\nRUN sleep 100\n")})
	if err == nil || time.Since(start) > 20*time.Second {
		t.Errorf("cancelled build: err=%v after %v", err, time.Since(start))
	}
	checkNothingLeft(t, root)

	// The state dir still works.
	if _, err := st.Build(t.Context(), build.Options{ContextDir: ctxDir, Dockerfile: []byte("FROM " + base + "\nCOPY present.txt /\nRUN cat /present.txt\n"), Tags: []string{"ok"}}); err != nil {
		t.Fatalf("build after failures: %v", err)
	}
}
