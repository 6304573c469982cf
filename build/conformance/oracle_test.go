package conformance_test

import (
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"maps"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/builder-dev/builder/internal/testutil"
)

var oracleBin = flag.String("conformance.buildkit", "",
	"TestConformanceOracle: a directory holding buildkitd and buildctl; build every case with BuildKit and rewrite its expected.json (testdata/conformance/oracle/run.sh)")

// TestConformanceOracle builds every case with a real BuildKit (buildkitd
// with runc, started here on a private socket and state dir) and rewrites
// each expected.json from the image BuildKit made, or from the error it
// gave. It is how expectations are made; CI never runs it.
func TestConformanceOracle(t *testing.T) {
	if *oracleBin == "" {
		t.Skip("run testdata/conformance/oracle/run.sh to regenerate the expectations with BuildKit")
	}
	testutil.RequiresRoot(t)
	env := confBases(t)
	bk := startBuildkitd(t, *oracleBin, env.tokens["{{REGISTRY}}"])
	t.Logf("BuildKit %s", bk.version)
	var diffs []string
	for _, cname := range caseNames(t) {
		if *caseFilter != "" && !strings.Contains(cname, *caseFilter) {
			continue
		}
		t.Run(cname, func(t *testing.T) {
			c := env.prepare(t, cname)
			got, bkErr := bk.build(t, env, c)
			var out confExpected
			if bkErr != "" {
				out = oracleError(t, c, bkErr)
			} else {
				out = oracleImage(t, c, got)
			}
			out.BuildKit = bk.version
			if bkErr == "" {
				// Of a Dockerfile BuildKit cannot build, buildctl shows
				// the findings but not the error that ended the checks,
				// so "none" cannot be told from "stopped": not recorded.
				out.Checks = bk.lint(t, c)
			}
			if d := oracleDiff(c, &out); d != "" {
				diffs = append(diffs, cname+": "+d)
			}
			writeJSON(t, filepath.Join(c.dir, "expected.json"), &out)
		})
	}
	sort.Strings(diffs)
	t.Logf("%d cases changed from their previous expected.json:\n%s", len(diffs), strings.Join(diffs, "\n"))
}

// buildkit is a running buildkitd.
type buildkit struct {
	buildctl, addr, version string
}

// startBuildkitd starts dir/buildkitd as root with the runc OCI worker on a
// private socket and state dir, trusting the plain-HTTP registry reg, and
// stops it (by its PID) when the test ends.
func startBuildkitd(t *testing.T, dir, reg string) *buildkit {
	state := t.TempDir()
	cfg := filepath.Join(state, "buildkitd.toml")
	cgParent := oracleCgroupParent(t)
	toml := fmt.Sprintf(`[worker.oci]
  enabled = true
  gc = false
  defaultCgroupParent = %q
[worker.containerd]
  enabled = false
[registry.%q]
  http = true
  insecure = true
`, cgParent, reg)
	if err := os.WriteFile(cfg, []byte(toml), 0o644); err != nil {
		t.Fatal(err)
	}
	runc, err := exec.LookPath("runc")
	if err != nil {
		t.Fatal("runc not found (apt-get install runc)")
	}
	bk := &buildkit{buildctl: filepath.Join(dir, "buildctl"), addr: "unix://" + filepath.Join(state, "buildkitd.sock")}
	v, err := exec.Command(filepath.Join(dir, "buildkitd"), "--version").Output()
	if err != nil {
		t.Fatalf("buildkitd --version: %v", err)
	}
	// "buildkitd github.com/moby/buildkit v0.34.2 <revision>"
	if f := strings.Fields(string(v)); len(f) >= 3 {
		bk.version = f[2]
	} else {
		t.Fatalf("buildkitd --version printed %q", v)
	}
	logf, err := os.Create(filepath.Join(state, "buildkitd.log"))
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(dir, "buildkitd"), "--config", cfg, "--root", filepath.Join(state, "root"),
		"--addr", bk.addr, "--oci-worker-binary", runc, "--containerd-worker=false", "--oci-worker=true")
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(20 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
		logf.Close()
	})
	for i := 0; ; i++ {
		err := exec.Command(bk.buildctl, "--addr", bk.addr, "debug", "workers").Run()
		if err == nil {
			break
		}
		if i == 60 {
			b, _ := os.ReadFile(logf.Name())
			t.Fatalf("buildkitd did not come up: %v\n%s", err, lastLines(b, 20))
		}
		time.Sleep(500 * time.Millisecond)
	}
	return bk
}

// build builds a case with buildctl and returns what its image holds, or
// BuildKit's error as "Dockerfile:LINE: message" (the message without
// buildctl's "failed to solve: " prefix).
func (bk *buildkit) build(t *testing.T, env *confEnv, c *confCase) (*confExpected, string) {
	tarPath := filepath.Join(t.TempDir(), "image.tar")
	args := append(bk.args(t, c), "--output", "type=oci,dest="+tarPath)
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bk.buildctl, args...).CombinedOutput()
	if err != nil {
		msg := buildctlError(out)
		if msg == "" {
			t.Fatalf("buildctl: %v\n%s", err, lastLines(out, 20))
		}
		return nil, env.unexpand(msg, c.name)
	}
	if keep := os.Getenv("ORACLE_KEEP"); keep != "" {
		// For looking into what BuildKit made: ORACLE_KEEP=DIR keeps
		// DIR/<case>.tar.
		if b, err := os.ReadFile(tarPath); err == nil {
			_ = os.WriteFile(filepath.Join(keep, c.name+".tar"), b, 0o644)
		}
	}
	img := testutil.LayoutImage(t, string(testutil.UntarLayout(t, tarPath)))
	got, err := env.observe(img)
	if err != nil {
		t.Fatal(err)
	}
	env.tokenize(got, c.name)
	return got, ""
}

// args are buildctl's arguments to build case c with the Dockerfile
// frontend, without an output.
func (bk *buildkit) args(t *testing.T, c *confCase) []string {
	dfDir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dfDir, "Dockerfile"), c.dockerfile, 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"--addr", bk.addr, "build", "--progress", "plain", "--frontend", "dockerfile.v0",
		"--local", "context=" + c.contextDir, "--local", "dockerfile=" + dfDir,
		// The frontend forwards to a "# syntax=" image unless cmdline is
		// set (as forwarded frontends have it): builder ignores the
		// directive, so BuildKit's built-in frontend must too.
		"--opt", "cmdline="}
	if c.opts.Target != "" {
		args = append(args, "--opt", "target="+c.opts.Target)
	}
	for _, k := range slices.Sorted(maps.Keys(c.opts.BuildArgs)) {
		args = append(args, "--opt", "build-arg:"+k+"="+c.opts.BuildArgs[k])
	}
	for _, k := range slices.Sorted(maps.Keys(c.contexts)) {
		v := c.contexts[k]
		if strings.Contains(v, "://") {
			args = append(args, "--opt", "context:"+k+"="+v)
			continue
		}
		args = append(args, "--local", k+"="+v, "--opt", "context:"+k+"=local:"+k)
	}
	for _, id := range slices.Sorted(maps.Keys(c.secrets)) {
		args = append(args, "--secret", "id="+id+",src="+c.secrets[id])
	}
	return args
}

// lint runs BuildKit's build checks on a case (the frontend's lint
// request, as `docker buildx build --check`) and returns its findings as
// "Rule:LINE", sorted; nil when BuildKit could not check it.
func (bk *buildkit) lint(t *testing.T, c *confCase) []string {
	ctx, cancel := context.WithTimeout(t.Context(), 5*time.Minute)
	defer cancel()
	out, err := exec.CommandContext(ctx, bk.buildctl, append(bk.args(t, c), "--opt", "requestid=frontend.lint")...).CombinedOutput()
	if err != nil {
		t.Logf("BuildKit's lint request failed (%v): %s", err, lastLines(out, 3))
		return nil
	}
	return lintFindings(out)
}

// lintFindings picks the findings out of buildctl's output of a lint
// request: "WARNING: Rule - URL", the rule's message, then the
// "Dockerfile:LINE" of the source it shows (absent for a finding without
// a place: line 0).
func lintFindings(out []byte) []string {
	found := []string{}
	rule := ""
	for _, l := range strings.Split(string(out), "\n") {
		l = strings.TrimSpace(l)
		if r, ok := strings.CutPrefix(l, "WARNING: "); ok {
			if rule != "" {
				found = append(found, rule+":0")
			}
			rule, _, _ = strings.Cut(r, " - ")
			continue
		}
		if m := dockerfileLine.FindStringSubmatch(l); m != nil && rule != "" {
			found = append(found, rule+":"+m[1])
			rule = ""
		}
	}
	if rule != "" {
		found = append(found, rule+":0")
	}
	sortFindings(found)
	return found
}

// oracleCgroupParent returns a cgroup path beneath this process's own (its
// memory cgroup's on v1, its cgroup on v2) for runc's step cgroups, which
// otherwise go to /buildkit at the root, and removes every directory that
// did not exist before under each hierarchy when the test ends (after
// buildkitd has stopped: cleanups run last-registered first).
func oracleCgroupParent(t *testing.T) string {
	b, err := os.ReadFile("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	mine := "/"
	for _, l := range strings.Split(string(b), "\n") {
		f := strings.SplitN(l, ":", 3)
		if len(f) != 3 {
			continue
		}
		if f[1] == "memory" || (f[0] == "0" && mine == "/") {
			mine = f[2]
		}
	}
	parent := filepath.Join(mine, fmt.Sprintf("builder-oracle-%d", os.Getpid()))
	hierarchies := []string{"/sys/fs/cgroup"}
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err != nil {
		hierarchies, _ = filepath.Glob("/sys/fs/cgroup/*")
	}
	// The directories to remove afterwards, deepest last.
	var created []string
	for _, h := range hierarchies {
		for p := parent; p != "/"; p = filepath.Dir(p) {
			if _, err := os.Stat(filepath.Join(h, p)); err != nil {
				created = append([]string{filepath.Join(h, p)}, created...)
			}
		}
	}
	t.Cleanup(func() {
		for i := len(created) - 1; i >= 0; i-- {
			d := created[i]
			// runc removes a step's cgroup; "buildkit" below ours stays.
			subdirs, _ := filepath.Glob(filepath.Join(d, "*", "*"))
			for _, s := range append(subdirs, filepath.Join(d, "buildkit")) {
				if fi, err := os.Stat(s); err == nil && fi.IsDir() {
					_ = os.Remove(s)
				}
			}
			if err := os.Remove(d); err != nil && !os.IsNotExist(err) {
				t.Logf("removing cgroup %s: %v", d, err)
			}
		}
	})
	return parent
}

var dockerfileLine = regexp.MustCompile(`^Dockerfile:(\d+)$`)

// buildctlError picks the error out of buildctl's plain output: the
// source line it shows ("Dockerfile:3") and its last "error: " line.
func buildctlError(out []byte) string {
	var where, msg string
	for _, l := range strings.Split(string(out), "\n") {
		l = strings.TrimSpace(l)
		if dockerfileLine.MatchString(l) && where == "" {
			where = l
		}
		if m, ok := strings.CutPrefix(l, "error: "); ok {
			msg = strings.TrimPrefix(m, "failed to solve: ")
		}
	}
	if msg == "" {
		return ""
	}
	if where != "" {
		return where + ": " + msg
	}
	return msg
}

// oracleImage is the expectation for a case BuildKit built: its image, with
// the case's note and the files whose mtime is checked kept.
func oracleImage(t *testing.T, c *confCase, got *confExpected) confExpected {
	out := *got
	out.Note = c.want.Note
	for i := range out.Files {
		if !slices.ContainsFunc(c.want.Files, func(w confFile) bool { return w.Path == out.Files[i].Path && w.Mtime != nil }) {
			out.Files[i].Mtime = nil
		}
	}
	if out.Config != nil && out.Config.Healthcheck != nil && len(out.Config.Healthcheck.Test) == 0 {
		out.Config.Healthcheck = nil
	}
	if c.haveWant && len(c.want.Error) > 0 {
		t.Logf("DIFF BuildKit builds it; expected.json expected an error %q", c.want.Error)
	}
	return out
}

// oracleError is the expectation for a case BuildKit failed: BuildKit's
// error, and the substrings builder's error must hold. The Dockerfile:LINE
// is BuildKit's; the other substrings are kept when BuildKit's error holds
// them too (in substance: case aside), else reported for a human to pick.
func oracleError(t *testing.T, c *confCase, bkErr string) confExpected {
	out := confExpected{Note: c.want.Note, BuildKitError: bkErr}
	if !c.haveWant || len(c.want.Error) == 0 {
		t.Logf("DIFF BuildKit fails: %s", bkErr)
	}
	where, _, _ := strings.Cut(bkErr, ": ")
	if !dockerfileLine.MatchString(where) {
		where = ""
	}
	if where != "" {
		out.Error = append(out.Error, where)
	}
	for _, w := range c.want.Error {
		switch {
		case dockerfileLine.MatchString(w):
			if w != where {
				t.Logf("DIFF BuildKit reports %q, expected.json said %q", where, w)
			}
		case strings.Contains(strings.ToLower(bkErr), strings.ToLower(w)):
			out.Error = append(out.Error, w)
		default:
			t.Logf("DIFF BuildKit's error %q lacks %q: pick the cause by hand", bkErr, w)
		}
	}
	return out
}

// oracleDiff says which parts of a case's new expectation differ from
// what its expected.json said before.
func oracleDiff(c *confCase, out *confExpected) string {
	if !c.haveWant {
		return "new"
	}
	var parts []string
	if !slices.Equal(c.want.Checks, out.Checks) || (c.want.Checks == nil) != (out.Checks == nil) {
		parts = append(parts, fmt.Sprintf("checks %q, were %q", out.Checks, c.want.Checks))
	}
	if d := imageDiff(c, out); d != "" {
		parts = append(parts, d)
	}
	return strings.Join(parts, "; ")
}

// imageDiff says how the image or error of a case's new expectation
// differs from its expected.json.
func imageDiff(c *confCase, out *confExpected) string {
	switch {
	case len(c.want.Error) > 0 && len(out.Error) == 0:
		return "BuildKit builds it"
	case len(c.want.Error) == 0 && len(out.Error) > 0:
		return "BuildKit fails: " + out.BuildKitError
	case len(out.Error) > 0:
		if !slices.Equal(c.want.Error, out.Error) {
			return fmt.Sprintf("error %q, was %q", out.Error, c.want.Error)
		}
		return ""
	}
	want := c.want
	if want.History == nil {
		want.History = out.History
	}
	var parts []string
	for _, p := range compare(&want, out) {
		parts = append(parts, firstLine(p))
	}
	return strings.Join(parts, "; ")
}

func writeJSON(t *testing.T, path string, v any) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestLintFindings reads buildctl's output of a lint request (as BuildKit
// v0.34.2 prints it).
func TestLintFindings(t *testing.T) {
	out := []byte(`#1 [internal] load build definition from Dockerfile
#1 DONE 0.1s

WARNING: FromAsCasing - https://docs.docker.com/go/dockerfile/rule/from-as-casing/
'as' and 'FROM' keywords' casing do not match
Dockerfile:1
--------------------
   1 | >>> FROM scratch as base
   2 |     CMD echo hi
--------------------

WARNING: LegacyKeyValueFormat - https://docs.docker.com/go/dockerfile/rule/legacy-key-value-format/
"ENV key=value" should be used instead of legacy "ENV key value" format
Dockerfile:12
--------------------
  12 | >>> ENV A 1
--------------------

WARNING: JSONArgsRecommended - https://docs.docker.com/go/dockerfile/rule/json-args-recommended/
JSON arguments recommended for CMD to prevent unintended behavior related to OS signals
Dockerfile:2
--------------------
   2 | >>> CMD echo hi
--------------------

WARNING: NoPlace - https://example.com/
`)
	want := []string{"NoPlace:0", "FromAsCasing:1", "JSONArgsRecommended:2", "LegacyKeyValueFormat:12"}
	if got := lintFindings(out); !slices.Equal(got, want) {
		t.Errorf("lintFindings = %q, want %q", got, want)
	}
	if got := lintFindings([]byte("#1 DONE 0.1s\n")); got == nil || len(got) != 0 {
		t.Errorf("lintFindings(no warnings) = %#v, want an empty, non-nil list", got)
	}
}
