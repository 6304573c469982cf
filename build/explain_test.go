package build_test

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/internal/testutil"
	"github.com/builder-dev/builder/solver"
)

// reasons records why each step ran.
type reasons struct {
	mu sync.Mutex
	m  map[string]string
}

func (r *reasons) Event(e solver.Event) {
	if e.Kind == solver.Started {
		r.mu.Lock()
		r.m[e.Name] = e.Reason
		r.mu.Unlock()
	}
}

// TestCacheMatrixAndExplain edits, touches and chmods context files and
// changes build args, checking which steps run again and the reason given.
func TestCacheMatrixAndExplain(t *testing.T) {
	testutil.RequiresRoot(t)
	reg := testutil.InProcessRegistry(t)
	base := reg + "/busybox:1"
	testutil.PushImage(t, testutil.BusyboxImage(t), base)
	st := openState(t, t.TempDir())
	ctxDir := writeContext(t, map[string]string{
		"src/main.go": "package main", "src/util.go": "package util", "README": "docs", "notes.txt": "ignored",
		".dockerignore": "notes.txt\n",
	})
	df := []byte(`FROM ` + base + `
COPY src/ /src/
RUN cat /src/*.go > /all
ARG VERSION=1
RUN echo $VERSION > /version
COPY README /README
`)
	const copySrc, runCat, runVersion, copyReadme = "[stage-0 2/6] COPY src/ /src/", "[stage-0 3/6] RUN cat /src/*.go > /all", "[stage-0 5/6] RUN echo $VERSION > /version", "[stage-0 6/6] COPY README /README"
	buildWith := func(args map[string]string) map[string]string {
		t.Helper()
		r := &reasons{m: map[string]string{}}
		if _, err := st.Build(t.Context(), build.Options{ContextDir: ctxDir, Dockerfile: df, DockerfileName: "Dockerfile", BuildArgs: args, Progress: r}); err != nil {
			t.Fatal(err)
		}
		delete(r.m, "[internal] load build context")
		return r.m
	}
	first := buildWith(nil)
	if !strings.Contains(first[runCat], "no cache record") {
		t.Errorf("first build reason = %q", first[runCat])
	}
	old := time.Now().Add(-time.Hour)
	steps := []struct {
		name   string
		change func() error // the edit; its error fails the test
		args   map[string]string
		ran    map[string]string // step -> substring of its reason
	}{
		{"nothing", func() error { return nil }, nil, map[string]string{}},
		{"touch a selected file", func() error { return os.Chtimes(filepath.Join(ctxDir, "src/main.go"), old, old) }, nil, map[string]string{}},
		{"edit an unrelated file", func() error { return os.WriteFile(filepath.Join(ctxDir, "notes.txt"), []byte("x"), 0o644) }, nil, map[string]string{}},
		{"edit a selected file", func() error {
			return os.WriteFile(filepath.Join(ctxDir, "src/main.go"), []byte("package main // v2"), 0o644)
		}, nil, map[string]string{
			copySrc: "src/main.go modified", runCat: "input changed: COPY src/ /src/ (Dockerfile:2)", runVersion: "input changed", copyReadme: "input changed",
		}},
		{"chmod a selected file", func() error { return os.Chmod(filepath.Join(ctxDir, "src/util.go"), 0o755) }, nil, map[string]string{
			copySrc: "src/util.go modified", runCat: "input changed", runVersion: "input changed", copyReadme: "input changed",
		}},
		{"add a file", func() error { return os.WriteFile(filepath.Join(ctxDir, "src/new.go"), nil, 0o644) }, nil, map[string]string{
			copySrc: "src/new.go added", runCat: "input changed", runVersion: "input changed", copyReadme: "input changed",
		}},
		{"change a build arg", func() error { return nil }, map[string]string{"VERSION": "2"}, map[string]string{
			runVersion: `VERSION changed "1" → "2"`, copyReadme: "input changed",
		}},
		{"change the last file", func() error { return os.WriteFile(filepath.Join(ctxDir, "README"), []byte("docs v2"), 0o644) }, map[string]string{"VERSION": "2"}, map[string]string{
			copyReadme: "README modified",
		}},
		{"back to a known arg", func() error { return nil }, map[string]string{"VERSION": "1"}, map[string]string{copyReadme: "input changed"}},
	}
	for _, s := range steps {
		if err := s.change(); err != nil {
			t.Fatalf("%s: %v", s.name, err)
		}
		got := buildWith(s.args)
		for name, want := range s.ran {
			if reason, ok := got[name]; !ok || !strings.Contains(reason, want) {
				t.Errorf("%s: step %s: ran=%v reason %q, want it to run because %q", s.name, name, ok, reason, want)
			}
		}
		for name := range got {
			if _, ok := s.ran[name]; !ok {
				t.Errorf("%s: step %s ran (%q), want it cached", s.name, name, got[name])
			}
		}
	}
}

// TestSameOutputKeepsLaterStepsCached changes a file so that a stage runs
// again but writes the same file that a later stage copies: the copy and
// the steps after it stay cached.
func TestSameOutputKeepsLaterStepsCached(t *testing.T) {
	testutil.RequiresRoot(t)
	reg := testutil.InProcessRegistry(t)
	base := reg + "/busybox:1"
	testutil.PushImage(t, testutil.BusyboxImage(t), base)
	st := openState(t, t.TempDir())
	ctxDir := writeContext(t, map[string]string{"in.txt": "a b\n"})
	df := []byte(`FROM ` + base + ` AS build
COPY in.txt /in.txt
RUN tr -d ' ' < /in.txt > /norm.txt
FROM ` + base + `
COPY --from=build /norm.txt /norm.txt
RUN cat /norm.txt > /final.txt
`)
	run := func() map[string]string {
		r := &reasons{m: map[string]string{}}
		if _, err := st.Build(t.Context(), build.Options{ContextDir: ctxDir, Dockerfile: df, Progress: r}); err != nil {
			t.Fatal(err)
		}
		return r.m
	}
	run()
	if err := os.WriteFile(filepath.Join(ctxDir, "in.txt"), []byte(" ab\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ran := run()
	if _, ok := ran["[build 3/3] RUN tr -d ' ' < /in.txt > /norm.txt"]; !ok {
		t.Errorf("the step reading the changed file did not run: %v", ran)
	}
	for _, step := range []string{"[stage-1 2/3] COPY --from=build /norm.txt /norm.txt", "[stage-1 3/3] RUN cat /norm.txt > /final.txt"} {
		if reason, ok := ran[step]; ok {
			t.Errorf("%s ran again (%s), though the file it copies is the same", step, reason)
		}
	}
	// A real change to the copied file still runs them.
	if err := os.WriteFile(filepath.Join(ctxDir, "in.txt"), []byte("a c\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ran = run()
	if _, ok := ran["[stage-1 3/3] RUN cat /norm.txt > /final.txt"]; !ok {
		t.Errorf("a changed copied file did not make the later step run: %v", ran)
	}
}
