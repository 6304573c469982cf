package build_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/output"
	"github.com/builder-dev/builder/solver"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestBuildChecks builds a Dockerfile that breaks rules: the build
// succeeds and reports each finding with its line; with check=error=true
// (directive or build arg) it fails before any step runs; --check alone
// (State.Check) looks at every stage and runs nothing.
func TestBuildChecks(t *testing.T) {
	base := busyboxBase(t)
	ctxDir := writeContext(t, map[string]string{"app.txt": "app\n", "secret.txt": "s\n", ".dockerignore": "secret.txt\n"})
	df := "FROM " + base + " as base\nARG API_TOKEN\nCOPY app.txt /\nWORKDIR app\nCMD echo $HOME\n" +
		"FROM base AS unused\nENV A=$NOPE\nCOPY secret.txt /\n"
	st := openState(t, t.TempDir())
	var got []string
	res, err := st.Build(t.Context(), build.Options{
		ContextDir: ctxDir, Dockerfile: []byte(df), DockerfileName: "Dockerfile", Target: "base",
		OnCheck: func(ws []build.CheckWarning) {
			for _, w := range ws {
				got = append(got, w.String())
			}
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	want := []string{
		"Dockerfile:1: FromAsCasing: 'as' and 'FROM' keywords' casing do not match",
		"Dockerfile:2: SecretsUsedInArgOrEnv: Do not use ARG or ENV instructions for sensitive data (ARG \"API_TOKEN\")",
		"Dockerfile:4: WorkdirRelativePath: Relative workdir \"app\" can have unexpected results if the base image changes",
		"Dockerfile:5: JSONArgsRecommended: JSON arguments recommended for CMD to prevent unintended behavior related to OS signals",
	}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("build checks:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	if files := builtFiles(t, st, res.Manifest); files["app.txt"].content != "app\n" {
		t.Errorf("the image lacks /app.txt: %v", files)
	}

	for name, opt := range map[string]build.Options{
		"directive": {Dockerfile: []byte("# check=error=true\n" + df)},
		"build arg": {Dockerfile: []byte(df), BuildArgs: map[string]string{"BUILDKIT_DOCKERFILE_CHECK": "error=true"}},
	} {
		ev := newEvents()
		opt.ContextDir, opt.Target, opt.Progress = ctxDir, "base", ev
		_, err := openState(t, t.TempDir()).Build(t.Context(), opt)
		if err == nil || !strings.Contains(err.Error(), "lint violation found") {
			t.Errorf("check=error=true (%s): build error %v, want a lint violation", name, err)
		}
		for step, kinds := range ev.kinds {
			for _, k := range kinds {
				if k == solver.Started {
					t.Errorf("check=error=true (%s): step %s ran", name, step)
				}
			}
		}
	}

	if _, err := st.Build(t.Context(), build.Options{ContextDir: ctxDir, Dockerfile: []byte("# check=nonsense\n" + df), Target: "base"}); err == nil || !strings.Contains(err.Error(), "invalid check options") {
		t.Errorf("a build with invalid check options: error %v", err)
	}

	cr, err := st.Check(t.Context(), build.Options{ContextDir: ctxDir, Dockerfile: []byte(df), DockerfileName: "Dockerfile"})
	if err != nil {
		t.Fatal(err)
	}
	var rules []string
	for _, w := range cr.Warnings {
		rules = append(rules, fmt.Sprintf("%s:%d", w.Rule, w.Line))
	}
	if fmt.Sprint(rules) != "[FromAsCasing:1 SecretsUsedInArgOrEnv:2 WorkdirRelativePath:4 JSONArgsRecommended:5 UndefinedVar:7 CopyIgnoredFile:8]" {
		t.Errorf("Check of every stage = %v", rules)
	}
}

// TestBuildChecksPerPlatform: a build of several platforms checks the
// stages each platform needs (FROM base-$TARGETARCH), and reports a
// finding of both platforms once.
func TestBuildChecksPerPlatform(t *testing.T) {
	base := busyboxIndexBase(t)
	df := "FROM " + base + " AS base-amd64\nCMD echo amd64\n" +
		"FROM " + base + " AS base-arm64\nENV A=$NOPE\n" +
		"FROM base-${TARGETARCH}\nWORKDIR app\n"
	for _, tc := range []struct {
		platforms []ocispec.Platform
		want      []string
	}{
		{[]ocispec.Platform{{OS: "linux", Architecture: "amd64"}}, []string{"JSONArgsRecommended:2", "WorkdirRelativePath:6"}},
		{[]ocispec.Platform{{OS: "linux", Architecture: "amd64"}, {OS: "linux", Architecture: "arm64"}}, []string{"JSONArgsRecommended:2", "WorkdirRelativePath:6", "UndefinedVar:4"}},
	} {
		var got []string
		ev, _, err := runBuildIndex(t, openState(t, t.TempDir()), df, build.Options{
			Platforms: tc.platforms,
			OnCheck: func(ws []build.CheckWarning) {
				for _, w := range ws {
					got = append(got, fmt.Sprintf("%s:%d", w.Rule, w.Line))
				}
			},
			Outputs: []output.Spec{{Type: output.Local, Dest: t.TempDir()}},
		})
		if err != nil {
			t.Fatalf("build: %v\n%s", err, ev.logs.String())
		}
		if strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("checks of %d platforms = %v, want %v", len(tc.platforms), got, tc.want)
		}
	}
}
