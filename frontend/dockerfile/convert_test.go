package dockerfile

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/builder-dev/builder/llb"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

type fakeResolver map[string]ResolvedImage

func (f fakeResolver) ResolveImage(_ context.Context, ref string, _ ocispec.Platform) (ResolvedImage, error) {
	if r, ok := f[ref]; ok {
		return r, nil
	}
	return ResolvedImage{}, fmt.Errorf("%s: not found", ref)
}

func busybox() fakeResolver {
	var img Image
	img.Config.Env = []string{"PATH=/bin"}
	img.Config.Cmd = []string{"sh"}
	img.RootFS.DiffIDs = []digest.Digest{"sha256:1111111111111111111111111111111111111111111111111111111111111111"}
	return fakeResolver{"busybox": {Digest: "sha256:2222222222222222222222222222222222222222222222222222222222222222", Config: img}}
}

var amd64 = ocispec.Platform{OS: "linux", Architecture: "amd64"}

func build(t *testing.T, df string, opt Options) (*Result, error) {
	t.Helper()
	opt.Source = []byte(df)
	opt.TargetPlatform = amd64
	opt.Created = time.Unix(0, 0)
	return Build(t.Context(), opt, busybox())
}

func TestConfigFromInstructions(t *testing.T) {
	res, err := build(t, `ARG BASE=busybox
FROM $BASE AS base
ENV A=1 B="two words"
ARG V=def
WORKDIR app
WORKDIR sub
USER 1000:1000
LABEL x=$V
EXPOSE 80 53/udp 8000-8002
ENTRYPOINT ["/bin/app"]
STOPSIGNAL SIGTERM
`, Options{BuildArgs: map[string]string{"V": "given"}})
	if err != nil {
		t.Fatal(err)
	}
	cfg := res.Image.Config
	checks := []struct{ name, got, want string }{
		{"env", strings.Join(cfg.Env, ","), "PATH=/bin,A=1,B=two words"},
		{"workdir", cfg.WorkingDir, "/app/sub"},
		{"user", cfg.User, "1000:1000"},
		{"label", cfg.Labels["x"], "given"},
		{"entrypoint", strings.Join(cfg.Entrypoint, " "), "/bin/app"},
		{"cmd reset by entrypoint", strings.Join(cfg.Cmd, " "), ""},
		{"stopsignal", cfg.StopSignal, "SIGTERM"},
	}
	for _, c := range checks {
		if c.got != c.want {
			t.Errorf("%s = %q, want %q", c.name, c.got, c.want)
		}
	}
	if _, ok := cfg.ExposedPorts["8001/tcp"]; !ok || len(cfg.ExposedPorts) != 5 {
		t.Errorf("ExposedPorts = %v", cfg.ExposedPorts)
	}
	// base layer + ENV + ARG + 2 WORKDIR + USER + LABEL + EXPOSE + ENTRYPOINT + STOPSIGNAL
	if n := len(res.Image.History); n != 10 {
		t.Errorf("len(History) = %d, want 10", n)
	}
	nonEmpty := 0
	for _, h := range res.Image.History {
		if !h.EmptyLayer {
			nonEmpty++
		}
	}
	if nonEmpty != 3 {
		t.Errorf("non-empty history entries = %d, want 3 (base layer, two WORKDIRs)", nonEmpty)
	}
}

func TestRunSeesArgsAndEnv(t *testing.T) {
	res, err := build(t, `FROM busybox
ARG V=1
ENV V=env E=e
RUN echo $V
`, Options{})
	if err != nil {
		t.Fatal(err)
	}
	op, ok := res.Root.Op().(llb.ExecOp)
	if !ok {
		t.Fatalf("root op = %T, want ExecOp", res.Root.Op())
	}
	if got := strings.Join(op.Env, ","); got != "PATH=/bin,V=env,E=e" {
		t.Errorf("RUN env = %s", got)
	}
	if got := strings.Join(op.Args, "|"); got != "/bin/sh|-c|echo $V" {
		t.Errorf("RUN args = %s", got)
	}
}

func TestUnneededStagesAreNotResolved(t *testing.T) {
	res, err := build(t, `FROM doesnotexist AS unused
RUN false
FROM busybox AS a
RUN echo a
FROM scratch
COPY --from=a /x /y
COPY f /z
`, Options{})
	if err != nil {
		t.Fatal(err)
	}
	var kinds []string
	llb.Walk([]*llb.Vertex{res.Root}, func(v *llb.Vertex) error { kinds = append(kinds, v.Op().Kind()); return nil })
	if got := strings.Join(kinds, ","); got != "image,exec,copy,local,copy" {
		t.Errorf("graph = %s", got)
	}
	if res.Image.Config.Env[0] != "PATH="+DefaultPath {
		t.Errorf("scratch env = %v", res.Image.Config.Env)
	}
}

func TestErrorsNameTheLine(t *testing.T) {
	tests := []struct{ df, want string }{
		{"FROM busybox\nRUNN x\n", "Dockerfile:2"},
		{"FROM busybox\nCOPY --chmod=99999 a b\n", "Dockerfile:2"},
		{"FROM nothere\n", "Dockerfile:1"},
		{"FROM busybox AS a\nCOPY --from=a /a /b\n", "circular dependency detected on stage: a"},
		{"FROM busybox AS a\nCOPY --from=b /a /b\nFROM busybox AS b\nFROM a\n", "cannot copy from stage \"b\", it needs to be defined before current stage \"a\""},
		{"RUN x\n", "Dockerfile:1"},
		{"FROM busybox\nRUN --device=/dev/fuse true\n", "not supported yet"},
		{"FROM busybox AS build\nFROM buidl\n", "did you mean stage build?"},
		{"FROM busybox\nRUNN x\n", "did you mean RUN?"},
		{"FROM busybox\nENV A=${x\n", "Dockerfile:2"},
		{"FROM b AS c\nFROM busybox AS b\nFROM c\n", "defined later"},
		{"FROM busybox\nRUN echo a\x00b\n", "Dockerfile:2"},
		{"FROM busybox\nRUN [\"echo\", \"a\x00b\"]\n", "contains a NUL byte"},
	}
	for _, tt := range tests {
		_, err := build(t, tt.df, Options{})
		if err == nil || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Build(%q) error = %v, want it to contain %q", tt.df, err, tt.want)
		}
		var se *SourceError
		if err != nil && strings.HasPrefix(tt.want, "Dockerfile:") && !errors.As(err, &se) && !strings.Contains(err.Error(), tt.want) {
			t.Errorf("Build(%q) error %T is not a SourceError", tt.df, err)
		}
	}
}

func TestTargetSelectsStage(t *testing.T) {
	res, err := build(t, "FROM busybox AS one\nENV X=1\nFROM busybox AS two\nENV X=2\n", Options{Target: "one"})
	if err != nil {
		t.Fatal(err)
	}
	if got := res.Image.Config.Env[len(res.Image.Config.Env)-1]; got != "X=1" {
		t.Errorf("target one env = %s", got)
	}
	if _, err := build(t, "FROM busybox AS one\n", Options{Target: "nope"}); err == nil || !strings.Contains(err.Error(), "stages are: one") {
		t.Errorf("unknown target error = %v", err)
	}
}

func TestNoCacheFilter(t *testing.T) {
	res, err := build(t, "FROM busybox AS a\nRUN echo a\nFROM busybox AS b\nCOPY --from=a /x /x\nRUN echo b\n", Options{NoCacheFilter: []string{"a"}})
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	llb.Walk([]*llb.Vertex{res.Root}, func(v *llb.Vertex) error {
		if v.Meta().Name != "" {
			got[v.Meta().Name] = v.Meta().IgnoreCache
		}
		return nil
	})
	for name, ignore := range got {
		if want := strings.HasPrefix(name, "[a "); ignore != want {
			t.Errorf("%s: IgnoreCache = %v, want %v", name, ignore, want)
		}
	}
}

// TestPlatforms: FROM --platform=$BUILDPLATFORM makes a stage of the build
// platform, the others are the target's; BUILD*/TARGET* are the two
// platforms, visible in a stage only after ARG; an exec's identity holds
// its platform.
func TestPlatforms(t *testing.T) {
	arm64 := ocispec.Platform{OS: "linux", Architecture: "arm64"}
	res, err := Build(t.Context(), Options{TargetPlatform: arm64, BuildPlatform: amd64, Created: time.Unix(0, 0), Source: []byte(`
FROM --platform=$BUILDPLATFORM busybox AS b
ARG TARGETARCH BUILDARCH
RUN echo $BUILDARCH $TARGETARCH > /a
FROM busybox
RUN echo "[$TARGETARCH]" > /none
ARG TARGETPLATFORM
COPY --from=b /a /a
RUN echo $TARGETPLATFORM
`)}, busybox())
	if err != nil {
		t.Fatal(err)
	}
	if p := res.Image.Platform; p.Architecture != "arm64" || p.OS != "linux" {
		t.Errorf("image platform %+v, want linux/arm64", p)
	}
	var runs []string
	llb.Walk([]*llb.Vertex{res.Root}, func(v *llb.Vertex) error {
		if op, ok := v.Op().(llb.ExecOp); ok {
			runs = append(runs, op.Platform+" "+op.Args[len(op.Args)-1])
		}
		if op, ok := v.Op().(llb.ImageOp); ok {
			runs = append(runs, op.Platform+" image")
		}
		return nil
	})
	want := []string{"linux/amd64 image", "linux/amd64 echo $BUILDARCH $TARGETARCH > /a", "linux/arm64 image", `linux/arm64 echo "[$TARGETARCH]" > /none`, "linux/arm64 echo $TARGETPLATFORM"}
	for _, w := range want {
		if !slices.Contains(runs, w) {
			t.Errorf("graph has no %q; has %q", w, runs)
		}
	}
	var envs [][]string
	llb.Walk([]*llb.Vertex{res.Root}, func(v *llb.Vertex) error {
		if op, ok := v.Op().(llb.ExecOp); ok {
			envs = append(envs, op.Env)
			if strings.Contains(op.Args[len(op.Args)-1], "/none") && strings.Contains(fmt.Sprint(op.Env), "TARGETARCH") {
				t.Errorf("TARGETARCH is set before ARG TARGETARCH: %v", op.Env)
			}
		}
		return nil
	})
	all := fmt.Sprint(envs)
	for _, w := range []string{"BUILDARCH=amd64", "TARGETARCH=arm64", "TARGETPLATFORM=linux/arm64"} {
		if !strings.Contains(all, w) {
			t.Errorf("RUN environments %v lack %s", envs, w)
		}
	}
}
