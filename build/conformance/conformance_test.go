package conformance_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"maps"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/builder-dev/builder/build"
	"github.com/builder-dev/builder/exporter"
	"github.com/builder-dev/builder/internal/testutil"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
)

var (
	withBuildah = flag.Bool("conformance.buildah", false,
		"TestConformanceBuildah: build every case with Debian's buildah too and log where it differs from expected.json")
	caseFilter = flag.String("conformance.case", "", "only run conformance cases whose name contains this")
)

const conformanceDir = "../../testdata/conformance"

// confExpected is a case's expected.json.
type confExpected struct {
	// Note says what the case shows, or what a reader may find surprising.
	Note string `json:"note,omitempty"`
	// BuildKit is the version of the BuildKit whose build made this
	// expectation (TestConformanceOracle); every case must have one.
	BuildKit string `json:"buildkit,omitempty"`
	// Error lists substrings of the error of a build that must fail: the
	// Dockerfile:LINE of BuildKit's error and (chosen by hand) its cause.
	Error []string `json:"error,omitempty"`
	// BuildKitError is BuildKit's whole error, for reference.
	BuildKitError string      `json:"buildkitError,omitempty"`
	Config        *confConfig `json:"config,omitempty"`
	// Author is the image's author (MAINTAINER).
	Author string `json:"author,omitempty"`
	// History lists the history entries after the base image's.
	History []confHistory `json:"history,omitempty"`
	// Files are the entries of the final file tree that differ from the
	// base image's tree.
	Files []confFile `json:"files,omitempty"`
	// Checks are the findings of BuildKit's build checks (its lint
	// request) as "Rule:LINE", sorted; [] for none. Absent for a case
	// BuildKit fails to build (see TestConformanceOracle).
	Checks []string `json:"checks"`
}

// confConfig is the part of the image config a case checks. Every field
// is compared: absent means empty in the image.
type confConfig struct {
	Env          []string            `json:"Env,omitempty"`
	Cmd          []string            `json:"Cmd,omitempty"`
	Entrypoint   []string            `json:"Entrypoint,omitempty"`
	WorkingDir   string              `json:"WorkingDir,omitempty"`
	User         string              `json:"User,omitempty"`
	Labels       map[string]string   `json:"Labels,omitempty"`
	ExposedPorts map[string]struct{} `json:"ExposedPorts,omitempty"`
	Volumes      map[string]struct{} `json:"Volumes,omitempty"`
	StopSignal   string              `json:"StopSignal,omitempty"`
	Shell        []string            `json:"Shell,omitempty"`
	Healthcheck  *confHealth         `json:"Healthcheck,omitempty"`
	OnBuild      []string            `json:"OnBuild,omitempty"`
}

// confHealth is Docker's HealthConfig; durations in nanoseconds.
type confHealth struct {
	Test          []string `json:"Test,omitempty"`
	Interval      int64    `json:"Interval,omitempty"`
	Timeout       int64    `json:"Timeout,omitempty"`
	StartPeriod   int64    `json:"StartPeriod,omitempty"`
	StartInterval int64    `json:"StartInterval,omitempty"`
	Retries       int      `json:"Retries,omitempty"`
}

type confHistory struct {
	CreatedBy  string `json:"created_by"`
	EmptyLayer bool   `json:"empty_layer,omitempty"`
}

// confFile is one entry of a flattened file tree.
type confFile struct {
	Path    string `json:"path"`
	Deleted bool   `json:"deleted,omitempty"`
	Type    string `json:"type,omitempty"`
	Mode    string `json:"mode,omitempty"`
	UID     *int   `json:"uid,omitempty"`
	GID     *int   `json:"gid,omitempty"`
	Size    *int64 `json:"size,omitempty"`
	Link    string `json:"link,omitempty"`
	SHA256  string `json:"sha256,omitempty"`
	// Mtime (Unix seconds) is checked only when the expected entry has it.
	Mtime *int64 `json:"mtime,omitempty"`
	// Xattrs are the entry's SCHILY.xattr PAX records, name -> value in
	// hex (values are bytes: capabilities, ACLs).
	Xattrs map[string]string `json:"xattrs,omitempty"`
}

// line is the entry as one comparable line, without mtime unless
// withMtime.
func (f confFile) line(withMtime bool) string {
	if f.Deleted {
		return f.Path + " deleted"
	}
	s := fmt.Sprintf("%s %s %s %d:%d size=%d", f.Path, f.Type, f.Mode, deref(f.UID), deref(f.GID), deref(f.Size))
	if f.Link != "" {
		s += " -> " + f.Link
	}
	if f.SHA256 != "" {
		s += " sha256=" + f.SHA256
	}
	if withMtime && f.Mtime != nil {
		s += " mtime=" + strconv.FormatInt(*f.Mtime, 10)
	}
	for _, k := range slices.Sorted(maps.Keys(f.Xattrs)) {
		s += " xattr:" + k + "=" + f.Xattrs[k]
	}
	return s
}

func deref[T int | int64](p *T) T {
	if p == nil {
		return 0
	}
	return *p
}

// confBuildJSON is a case's optional build.json.
type confBuildJSON struct {
	BuildArgs map[string]string `json:"buildArgs,omitempty"`
	Target    string            `json:"target,omitempty"`
	// Contexts are named build contexts: NAME -> a directory of the case
	// (copied like context/) or a docker-image:// reference (tokens
	// expanded).
	Contexts map[string]string `json:"contexts,omitempty"`
	// Secrets are RUN --mount=type=secret values by id (given to both
	// builders as files).
	Secrets map[string]string `json:"secrets,omitempty"`
}

// confEnv is what every case shares: the registry with the base images,
// the HTTP server for ADD of URLs, and the token values.
type confEnv struct {
	tokens   map[string]string
	baseTree map[string]confFile
	baseDiff v1.Hash
	httpRoot string
	httpURL  string
}

// confBases pushes the base images every token names and returns the
// environment.
func confBases(t *testing.T) *confEnv {
	reg := testutil.InProcessRegistry(t)
	bb := testutil.BusyboxImage(t)
	testutil.PushImage(t, bb, reg+"/busybox:1")
	dgst, err := bb.Digest()
	if err != nil {
		t.Fatal(err)
	}
	layers, err := bb.Layers()
	if err != nil {
		t.Fatal(err)
	}
	baseDiff, err := layers[0].DiffID()
	if err != nil {
		t.Fatal(err)
	}
	withConfig := func(f func(*v1.Config)) v1.Image {
		cf, err := bb.ConfigFile()
		if err != nil {
			t.Fatal(err)
		}
		cf = cf.DeepCopy()
		f(&cf.Config)
		img, err := mutate.ConfigFile(bb, cf)
		if err != nil {
			t.Fatal(err)
		}
		return img
	}
	onbuild := withConfig(func(c *v1.Config) {
		c.OnBuild = []string{
			"ENV ONBUILD_ENV=from-trigger",
			`RUN echo "trigger saw ONBUILD_ENV=$ONBUILD_ENV" > /onbuild.txt`,
		}
	})
	testutil.PushImage(t, onbuild, reg+"/onbuild-base:1")
	configBase := withConfig(func(c *v1.Config) {
		c.Env = append(c.Env, "BASE_ENV=from-base")
		c.Entrypoint = []string{"/bin/echo", "base-entrypoint"}
		c.Cmd = []string{"base-cmd"}
		c.WorkingDir = "/tmp"
		c.Labels = map[string]string{"base.label": "base", "shared": "from-base"}
		c.ExposedPorts = map[string]struct{}{"8080/tcp": {}}
		c.StopSignal = "SIGQUIT"
	})
	testutil.PushImage(t, configBase, reg+"/config-base:1")

	httpRoot := t.TempDir()
	srv := httptest.NewServer(http.FileServer(http.Dir(httpRoot)))
	t.Cleanup(srv.Close)

	env := &confEnv{
		tokens: map[string]string{
			"{{REGISTRY}}":       reg,
			"{{BUSYBOX}}":        reg + "/busybox:1",
			"{{BUSYBOX_DIGEST}}": dgst.String(),
			"{{ONBUILD_BASE}}":   reg + "/onbuild-base:1",
			"{{CONFIG_BASE}}":    reg + "/config-base:1",
		},
		baseDiff: baseDiff,
		httpRoot: httpRoot,
		httpURL:  srv.URL,
	}
	env.baseTree, err = flatten(map[string]confFile{}, layers)
	if err != nil {
		t.Fatal(err)
	}
	return env
}

// confCase is one directory of testdata/conformance.
type confCase struct {
	name, dir  string
	dockerfile []byte
	opts       confBuildJSON
	want       confExpected
	haveWant   bool
	contextDir string
	// contexts are the named contexts as build.Options.Contexts takes them.
	contexts map[string]string
	// secrets are build.json's secrets written to files, by id.
	secrets map[string]string
}

func loadPending(t *testing.T) map[string]string {
	f, err := os.Open(filepath.Join(conformanceDir, "PENDING"))
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	pending := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		name, reason, _ := strings.Cut(line, "#")
		name = strings.TrimSpace(name)
		reason = strings.TrimSpace(reason)
		if reason == "" {
			t.Errorf("PENDING: %s has no `# reason`", name)
		}
		pending[name] = reason
	}
	return pending
}

func caseNames(t *testing.T) []string {
	entries, err := os.ReadDir(conformanceDir)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range entries {
		// oracle/ holds the script that regenerates the expectations.
		if e.IsDir() && e.Name() != "oracle" {
			names = append(names, e.Name())
		}
	}
	return names
}

// prepare reads a case and writes its context (with context.gen applied)
// into a temp dir, and its HTTP files under env.httpRoot/<case>/.
func (env *confEnv) prepare(t *testing.T, name string) *confCase {
	t.Helper()
	c := &confCase{name: name, dir: filepath.Join(conformanceDir, name)}
	df, err := os.ReadFile(filepath.Join(c.dir, "Dockerfile"))
	if err != nil {
		t.Fatal(err)
	}
	c.dockerfile = []byte(env.expand(string(df), name))
	if b, err := os.ReadFile(filepath.Join(c.dir, "build.json")); err == nil {
		if err := json.Unmarshal(b, &c.opts); err != nil {
			t.Fatalf("build.json: %v", err)
		}
		for k, v := range c.opts.BuildArgs {
			c.opts.BuildArgs[k] = env.expand(v, name)
		}
	}
	if b, err := os.ReadFile(filepath.Join(c.dir, "expected.json")); err == nil {
		dec := json.NewDecoder(bytes.NewReader(b))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&c.want); err != nil {
			t.Fatalf("expected.json: %v", err)
		}
		c.haveWant = true
	}
	c.contextDir = t.TempDir()
	c.secrets = map[string]string{}
	for id, v := range c.opts.Secrets {
		f := filepath.Join(t.TempDir(), "secret")
		if err := os.WriteFile(f, []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
		c.secrets[id] = f
	}
	c.contexts = map[string]string{}
	for k, v := range c.opts.Contexts {
		if strings.Contains(v, "://") {
			c.contexts[k] = env.expand(v, name)
			continue
		}
		dir := t.TempDir()
		if err := copyTree(filepath.Join(c.dir, v), dir); err != nil {
			t.Fatalf("build.json contexts: %v", err)
		}
		c.contexts[k] = dir
	}
	if err := copyTree(filepath.Join(c.dir, "context"), c.contextDir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	httpDir := filepath.Join(env.httpRoot, name)
	if err := os.MkdirAll(httpDir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := copyTree(filepath.Join(c.dir, "http"), httpDir); err != nil && !errors.Is(err, fs.ErrNotExist) {
		t.Fatal(err)
	}
	if err := runContextGen(c.dir, c.contextDir, httpDir); err != nil {
		t.Fatalf("context.gen: %v", err)
	}
	return c
}

// tokenize puts the tokens back into the history of an observed image
// (ADD of {{HTTP}} URLs), whose ports change from run to run.
func (env *confEnv) tokenize(got *confExpected, caseName string) {
	for i := range got.History {
		got.History[i].CreatedBy = env.unexpand(got.History[i].CreatedBy, caseName)
	}
}

// unexpand puts the tokens back into s (BuildKit's error messages).
func (env *confEnv) unexpand(s, caseName string) string {
	s = strings.ReplaceAll(s, env.httpURL+"/"+caseName, "{{HTTP}}")
	// Longest value first: {{BUSYBOX}} before the {{REGISTRY}} it holds.
	vals := slices.SortedFunc(maps.Keys(env.tokens), func(a, b string) int { return len(env.tokens[b]) - len(env.tokens[a]) })
	for _, k := range vals {
		s = strings.ReplaceAll(s, env.tokens[k], k)
	}
	return s
}

func (env *confEnv) expand(s, caseName string) string {
	for k, v := range env.tokens {
		s = strings.ReplaceAll(s, k, v)
	}
	return strings.ReplaceAll(s, "{{HTTP}}", env.httpURL+"/"+caseName)
}

// TestConformance builds every case of testdata/conformance and compares
// the image's config and file tree to expected.json. Cases listed in
// PENDING must still fail; every other case must pass.
func TestConformance(t *testing.T) {
	testutil.RequiresRoot(t)
	env := confBases(t)
	pending := loadPending(t)
	names := caseNames(t)
	for p := range pending {
		if !slices.Contains(names, p) {
			t.Errorf("PENDING names %s, which is not a case", p)
		}
	}
	st, err := build.Open(t.TempDir(), build.StateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	for _, name := range names {
		if *caseFilter != "" && !strings.Contains(name, *caseFilter) {
			continue
		}
		t.Run(name, func(t *testing.T) {
			c := env.prepare(t, name)
			problems := env.run(t, st, c)
			if c.haveWant && c.want.BuildKit == "" {
				problems = append(problems, "expected.json was not made by BuildKit: run testdata/conformance/oracle/run.sh -case "+name)
			}
			reason, isPending := pending[name]
			switch {
			case isPending && len(problems) == 0:
				t.Errorf("case passes but is listed in PENDING (%s): remove it from testdata/conformance/PENDING", reason)
			case isPending:
				t.Skipf("PENDING (%s); first problem: %s", reason, firstLine(problems[0]))
			default:
				for _, p := range problems {
					t.Error(p)
				}
			}
		})
	}
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}

// run builds and checks a case and returns what differs from
// expected.json.
func (env *confEnv) run(t *testing.T, st *build.State, c *confCase) []string {
	secrets := map[string]build.Secret{}
	for id, f := range c.secrets {
		secrets[id] = build.Secret{File: f}
	}
	opt := build.Options{
		ContextDir:     c.contextDir,
		Dockerfile:     c.dockerfile,
		DockerfileName: "Dockerfile",
		BuildArgs:      c.opts.BuildArgs,
		Target:         c.opts.Target,
		Contexts:       c.contexts,
		Secrets:        secrets,
	}
	return append(env.runBuild(t, st, c, opt), runChecks(t, st, c, opt)...)
}

// runChecks runs the build checks as `builder build --check` does and
// compares their findings with BuildKit's.
func runChecks(t *testing.T, st *build.State, c *confCase, opt build.Options) []string {
	if c.want.Checks == nil {
		return nil
	}
	res, err := st.Check(t.Context(), opt)
	if err != nil {
		return []string{fmt.Sprintf("build checks failed: %v (BuildKit's: %q)", err, c.want.Checks)}
	}
	got := []string{}
	for _, w := range res.Warnings {
		got = append(got, fmt.Sprintf("%s:%d", w.Rule, w.Line))
	}
	sortFindings(got)
	if !slices.Equal(got, c.want.Checks) {
		return []string{fmt.Sprintf("build checks found %q, BuildKit's %q", got, c.want.Checks)}
	}
	return nil
}

// sortFindings orders "Rule:LINE" findings by line, then rule.
func sortFindings(f []string) {
	line := func(s string) int {
		_, n, _ := strings.Cut(s, ":")
		i, _ := strconv.Atoi(n)
		return i
	}
	slices.SortFunc(f, func(a, b string) int {
		if d := line(a) - line(b); d != 0 {
			return d
		}
		return strings.Compare(a, b)
	})
}

// runBuild builds a case and returns what differs from expected.json.
func (env *confEnv) runBuild(t *testing.T, st *build.State, c *confCase, opt build.Options) []string {
	ev := &stepLogs{}
	opt.Progress = ev
	res, err := st.Build(t.Context(), opt)
	if err != nil {
		if c.haveWant && len(c.want.Error) > 0 {
			var problems []string
			for _, w := range c.want.Error {
				if !errorHas(err.Error(), env.expand(w, c.name)) {
					problems = append(problems, fmt.Sprintf("error %q does not contain %q (BuildKit: %s)", err, w, c.want.BuildKitError))
				}
			}
			return problems
		}
		return []string{fmt.Sprintf("build failed: %v\n%s", err, ev.String())}
	}
	img, err := exporter.V1Image(st.Content, res.Manifest)
	if err != nil {
		t.Fatal(err)
	}
	got, err := env.observe(img)
	if err != nil {
		t.Fatal(err)
	}
	env.tokenize(got, c.name)
	if !c.haveWant {
		return []string{"no expected.json: run testdata/conformance/oracle/run.sh -case " + c.name}
	}
	if len(c.want.Error) > 0 {
		return []string{fmt.Sprintf("build succeeded, want an error containing %q (BuildKit: %s)", c.want.Error, c.want.BuildKitError)}
	}
	return compare(&c.want, got)
}

// errorHas reports whether a build error holds want: "Dockerfile:3" must
// not be matched by "Dockerfile:30"; other substrings match case aside.
func errorHas(err, want string) bool {
	if dockerfileLine.MatchString(want) {
		return regexp.MustCompile(regexp.QuoteMeta(want) + `\b`).MatchString(err)
	}
	return strings.Contains(strings.ToLower(err), strings.ToLower(want))
}

// observe reads an image's config and its file tree relative to the base.
func (env *confEnv) observe(img v1.Image) (*confExpected, error) {
	raw, err := img.RawConfigFile()
	if err != nil {
		return nil, err
	}
	var cf struct {
		Author  string     `json:"author"`
		Config  confConfig `json:"config"`
		History []struct {
			CreatedBy  string `json:"created_by"`
			Comment    string `json:"comment"`
			EmptyLayer bool   `json:"empty_layer"`
		} `json:"history"`
		RootFS struct {
			DiffIDs []string `json:"diff_ids"`
		} `json:"rootfs"`
	}
	if err := json.Unmarshal(raw, &cf); err != nil {
		return nil, fmt.Errorf("image config: %w", err)
	}
	out := &confExpected{Config: &cf.Config, Author: cf.Author}
	for _, h := range cf.History {
		if h.Comment == "test base image" {
			continue
		}
		out.History = append(out.History, confHistory{CreatedBy: h.CreatedBy, EmptyLayer: h.EmptyLayer})
	}
	layers, err := img.Layers()
	if err != nil {
		return nil, err
	}
	// An image on busybox is compared to busybox's tree, which is
	// flattened once, not per case.
	base, start := map[string]confFile{}, map[string]confFile{}
	if len(cf.RootFS.DiffIDs) > 0 && cf.RootFS.DiffIDs[0] == env.baseDiff.String() {
		base, start = env.baseTree, maps.Clone(env.baseTree)
		layers = layers[1:]
	}
	tree, err := flatten(start, layers)
	if err != nil {
		return nil, err
	}
	out.Files = treeDiff(base, tree)
	return out, nil
}

// TestConformanceBuildah builds every case with Debian's buildah (when
// -conformance.buildah is given) and logs where its image differs from
// expected.json: the way expected values were checked against a second
// implementation. It never fails for a difference.
func TestConformanceBuildah(t *testing.T) {
	if !*withBuildah {
		t.Skip("run with -conformance.buildah to compare the cases with buildah")
	}
	testutil.RequiresRoot(t)
	bin := testutil.RequireTool(t, "buildah", "buildah")
	env := confBases(t)
	storage := t.TempDir()
	for _, cname := range caseNames(t) {
		if *caseFilter != "" && !strings.Contains(cname, *caseFilter) {
			continue
		}
		t.Run(cname, func(t *testing.T) {
			c := env.prepare(t, cname)
			dfPath := filepath.Join(t.TempDir(), "Dockerfile")
			if err := os.WriteFile(dfPath, c.dockerfile, 0o644); err != nil {
				t.Fatal(err)
			}
			tag := env.tokens["{{REGISTRY}}"] + "/buildah/" + cname + ":1"
			args := []string{"--root", filepath.Join(storage, "root"), "--runroot", filepath.Join(storage, "run"),
				"--storage-driver", "vfs", "build", "--tls-verify=false", "--isolation", "chroot", "--format", "docker",
				"-f", dfPath, "-t", "localhost/" + cname}
			if c.opts.Target != "" {
				args = append(args, "--target", c.opts.Target)
			}
			for k, v := range c.opts.BuildArgs {
				args = append(args, "--build-arg", k+"="+v)
			}
			args = append(args, c.contextDir)
			out, err := exec.Command(bin, args...).CombinedOutput()
			if err != nil {
				if len(c.want.Error) > 0 {
					t.Logf("buildah fails too, as expected: %s", lastLines(out, 3))
				} else {
					t.Logf("DIFF buildah failed: %v\n%s", err, lastLines(out, 5))
				}
				return
			}
			if len(c.want.Error) > 0 {
				t.Logf("DIFF buildah builds it; we expect an error %q", c.want.Error)
				return
			}
			push := exec.Command(bin, "--root", filepath.Join(storage, "root"), "--runroot", filepath.Join(storage, "run"),
				"--storage-driver", "vfs", "push", "--tls-verify=false", "localhost/"+cname, "docker://"+tag)
			if out, err := push.CombinedOutput(); err != nil {
				t.Fatalf("buildah push: %v\n%s", err, out)
			}
			ref, err := name.ParseReference(tag)
			if err != nil {
				t.Fatal(err)
			}
			img, err := remote.Image(ref)
			if err != nil {
				t.Fatal(err)
			}
			got, err := env.observe(img)
			if err != nil {
				t.Fatal(err)
			}
			// buildah adds its own version label, and leaves the empty
			// mount points of its RUN sandbox in the image.
			delete(got.Config.Labels, "io.buildah.version")
			got.Files = slices.DeleteFunc(got.Files, func(f confFile) bool {
				switch f.Path {
				case "/etc/hostname", "/etc/hosts", "/etc/resolv.conf", "/run":
					return deref(f.Size) == 0 && !slices.ContainsFunc(c.want.Files, func(w confFile) bool { return w.Path == f.Path })
				}
				return false
			})
			want := c.want
			want.History = nil
			if problems := compare(&want, got); len(problems) > 0 {
				t.Logf("DIFF buildah differs from expected.json:\n%s", strings.Join(problems, "\n"))
			} else {
				t.Logf("SAME buildah agrees with expected.json")
			}
		})
	}
}

func lastLines(b []byte, n int) string {
	lines := strings.Split(strings.TrimSpace(string(b)), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}
