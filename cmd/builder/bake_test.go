package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/builder-dev/builder/internal/testutil"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// loadBusybox puts testutil's busybox image into c's store as busybox:latest.
func loadBusybox(t *testing.T, c cli) {
	t.Helper()
	tar := filepath.Join(t.TempDir(), "busybox.tar")
	if err := tarball.WriteToFile(tar, name.MustParseReference("busybox:latest"), testutil.BusyboxImage(t)); err != nil {
		t.Fatal(err)
	}
	if _, stderr, code := c.run("load", "-i", tar); code != 0 {
		t.Fatalf("load busybox: %s", stderr)
	}
}

func writeTree(t *testing.T, dir string, files map[string]string) {
	t.Helper()
	for p, content := range files {
		if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, p), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

// bakeProject is a CLI with busybox:latest in its store and a directory
// holding files.
func bakeProject(t *testing.T, files map[string]string) (cli, string) {
	t.Helper()
	testutil.RequiresRoot(t)
	c := cli{t: t, bin: builderBinary(t), root: t.TempDir()}
	loadBusybox(t, c)
	dir := t.TempDir()
	writeTree(t, dir, files)
	return c, dir
}

// bakeDockerfile has a base stage that records a random stamp; each
// target stage copies it, so equal stamps mean the base ran once.
const bakeDockerfile = `FROM busybox AS base
RUN head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \n' > /stamp
FROM base AS a
ARG WHO=nobody
RUN echo "a $WHO" > /out
FROM base AS b
RUN echo b > /out
FROM base AS c
RUN echo c > /out
`

// TestBake builds three targets of an HCL file sharing a base stage, in one
// process: the base stage runs once, the images read back carry the
// inherited, variable and --set attributes.
func TestBake(t *testing.T) {
	c, dir := bakeProject(t, map[string]string{
		"Dockerfile": bakeDockerfile,
		"docker-bake.hcl": `
variable "TAG" { default = "1" }
group "default" { targets = ["a", "b", "c"] }
target "common" {
  labels = { "org.example.team" = "core" }
  args = { WHO = "common" }
}
target "a" {
  inherits = ["common"]
  target = "a"
  tags = ["bake-a:${TAG}"]
}
target "b" {
  inherits = ["common"]
  target = "b"
  tags = ["bake-b:${TAG}"]
}
target "c" {
  inherits = ["b"]
  target = "c"
  tags = ["bake-c:${TAG}"]
}
`})
	bake := func(env []string, args ...string) (string, string, int) {
		return c.runIn(dir, env, append([]string{"bake"}, args...)...)
	}

	stdout, stderr, code := bake([]string{"TAG=7"}, "--print", "--set", "a.args.WHO=set")
	if code != 0 {
		t.Fatalf("bake --print exited %d: %s", code, stderr)
	}
	var printed struct {
		Target map[string]struct {
			Tags   []string          `json:"tags"`
			Args   map[string]string `json:"args"`
			Target string            `json:"target"`
		} `json:"target"`
	}
	if err := json.Unmarshal([]byte(stdout), &printed); err != nil {
		t.Fatalf("--print output is not JSON: %v\n%s", err, stdout)
	}
	if a := printed.Target["a"]; a.Tags[0] != "bake-a:7" || a.Args["WHO"] != "set" || printed.Target["c"].Target != "c" {
		t.Errorf("--print:\n%s", stdout)
	}

	_, stderr, code = bake([]string{"TAG=2"}, "--progress", "plain", "--set", "a.args.WHO=set")
	if code != 0 {
		t.Fatalf("bake exited %d:\n%s", code, stderr)
	}
	// The three targets are one solve: the base stage's RUN is one step
	// (one #N) that ran once, shown in each target's lines, never cached.
	base := regexp.MustCompile(`(#\d+) \[base 2/2\] RUN head -c 16[^\n]*\n(?:[^\n]*\n)*?\s*#\d+ (DONE|CACHED)`)
	numbers := map[string]bool{}
	for _, tg := range []string{"a", "b", "c"} {
		var own strings.Builder
		for _, l := range strings.SplitAfter(stderr, "\n") {
			if rest, ok := strings.CutPrefix(l, "["+tg+"] "); ok {
				own.WriteString(rest)
			}
		}
		m := base.FindAllStringSubmatch(own.String(), -1)
		if len(m) != 1 || m[0][2] != "DONE" {
			t.Errorf("target %s's lines show the base step %v, want it once, DONE", tg, m)
			continue
		}
		numbers[m[0][1]] = true
	}
	if len(numbers) != 1 {
		t.Errorf("the base step has numbers %v in the targets' lines, want one step:\n%s", numbers, stderr)
	}
	stamps := map[string]bool{}
	for _, tg := range []string{"a", "b", "c"} {
		out, errOut, code := c.run("run", "bake-"+tg+":2", "sh", "-c", "cat /stamp; echo; cat /out")
		if code != 0 {
			t.Fatalf("run bake-%s:2: %s", tg, errOut)
		}
		stamp, rest, _ := strings.Cut(out, "\n")
		stamps[stamp] = true
		want := map[string]string{"a": "a set\n", "b": "b\n", "c": "c\n"}[tg]
		if rest != want {
			t.Errorf("bake-%s:2 /out is %q, want %q", tg, rest, want)
		}
	}
	if len(stamps) != 1 {
		t.Errorf("the shared base stage ran more than once: stamps %v", stamps)
	}
	out, _, _ := c.run("images")
	for _, want := range []string{"bake-a:2", "bake-b:2", "bake-c:2"} {
		if !strings.Contains(out, want) {
			t.Errorf("images lacks %s:\n%s", want, out)
		}
	}
	// Labels inherited from common reach the image config (c through b).
	tar := filepath.Join(t.TempDir(), "c.tar")
	if _, errOut, code := c.run("save", "-o", tar, "bake-c:2"); code != 0 {
		t.Fatal(errOut)
	}
	img, err := tarball.ImageFromPath(tar, nil)
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	if cfg.Config.Labels["org.example.team"] != "core" {
		t.Errorf("bake-c labels %v, want org.example.team=core inherited", cfg.Config.Labels)
	}
	_, stderr, code = bake(nil, "nosuch")
	if code == 0 || !strings.Contains(stderr, `no target or group named "nosuch"`) {
		t.Errorf("bake nosuch exited %d: %s", code, stderr)
	}
}

// TestBakeFailure: a failing target fails the bake, named, and the
// others are cancelled rather than waited for, as buildx does; the
// metadata file holds the target that completed before.
func TestBakeFailure(t *testing.T) {
	c, dir := bakeProject(t, map[string]string{
		"Dockerfile": "FROM busybox AS slow\nRUN sleep 30\nFROM busybox AS bad\nRUN sleep 5; exit 3\nFROM busybox AS good\nRUN echo ok > /ok\n",
		"docker-bake.hcl": `
group "default" { targets = ["slow", "bad", "good"] }
target "slow" { target = "slow" }
target "bad" { target = "bad" }
target "good" {
  target = "good"
  tags = ["bake-good"]
}
`})
	begin := time.Now()
	_, stderr, code := c.runIn(dir, nil, "bake", "--progress", "plain", "--metadata-file", "md.json")
	if code == 0 || !regexp.MustCompile(`(?m)^ERROR: target bad: `).MatchString(stderr) {
		t.Errorf("bake exited %d; want the failure of target bad:\n%s", code, stderr)
	}
	if took := time.Since(begin); took > 25*time.Second {
		t.Errorf("the failed bake took %v: target slow was waited for, not cancelled", took)
	}
	var md map[string]map[string]any
	data, err := os.ReadFile(filepath.Join(dir, "md.json"))
	if err == nil {
		err = json.Unmarshal(data, &md)
	}
	if err != nil {
		t.Fatalf("metadata file after the failed bake: %v", err)
	}
	_, good := md["good"]
	_, bad := md["bad"]
	_, slow := md["slow"]
	if !good || bad || slow || md["good"]["containerimage.digest"] == nil {
		t.Errorf("metadata file after the failed bake: %s; want target good alone, with its digest", data)
	}
}

// TestBakeMatrix builds the targets of a matrix, one of them tagged from
// another target's attribute, and lists them.
func TestBakeMatrix(t *testing.T) {
	c, dir := bakeProject(t, map[string]string{
		"Dockerfile": bakeDockerfile,
		"docker-bake.hcl": `
target "m" {
  name = "m-${tgt}"
  matrix = { tgt = ["b", "c"] }
  target = tgt
  tags = ["bake-m-${tgt}"]
}
target "extra" {
  target = "a"
  tags = [for t in target.m-b.tags : "${t}-extra"]
}
`})
	if _, stderr, code := c.runIn(dir, nil, "bake", "m", "extra"); code != 0 {
		t.Fatalf("bake exited %d: %s", code, stderr)
	}
	for img, want := range map[string]string{"bake-m-b": "b\n", "bake-m-c": "c\n", "bake-m-b-extra": "a nobody\n"} {
		if out, errOut, code := c.run("run", img, "cat", "/out"); code != 0 || out != want {
			t.Errorf("run %s exited %d: %q, want %q %s", img, code, out, want, errOut)
		}
	}
	out, stderr, code := c.runIn(dir, nil, "bake", "--list=targets")
	if code != 0 || !regexp.MustCompile(`(?m)^m\s+m-b, m-c$`).MatchString(out) || !strings.Contains(out, "m-c") {
		t.Errorf("bake --list=targets exited %d:\n%s%s", code, out, stderr)
	}
}

// TestBakeCompose builds the services of a compose file with a build
// section, with compose's variable interpolation.
func TestBakeCompose(t *testing.T) {
	c, dir := bakeProject(t, map[string]string{
		"app/Dockerfile": bakeDockerfile,
		"compose.yaml": `
services:
  web:
    image: compose-web:${TAG:-dev}
    build:
      context: ./app
      target: a
      args:
        WHO: compose
  db:
    image: postgres
`})
	if _, stderr, code := c.runIn(dir, nil, "bake"); code != 0 {
		t.Fatalf("bake exited %d: %s", code, stderr)
	}
	out, errOut, code := c.run("run", "compose-web:dev", "cat", "/out")
	if code != 0 || out != "a compose\n" {
		t.Errorf("run compose-web:dev exited %d: %q %s", code, out, errOut)
	}
}

// TestBakeCompletion: the shell completion offers the bake file's targets
// and groups, and files for build -f.
func TestBakeCompletion(t *testing.T) {
	c := cli{t: t, bin: builderBinary(t), root: t.TempDir()}
	dir := t.TempDir()
	writeTree(t, dir, map[string]string{"docker-bake.hcl": "group \"default\" { targets = [\"app\"] }\ntarget \"app\" {}\ntarget \"tools\" {}\n"})
	out, _, _ := c.runIn(dir, nil, "__complete", "bake", "")
	if !strings.HasPrefix(out, "app\ndefault\ntools\n:4\n") {
		t.Errorf("bake completion: %q", out)
	}
	out, _, _ = c.runIn(dir, nil, "__complete", "build", "-f", "")
	if !strings.HasSuffix(out, ":0\n") { // ShellCompDirectiveDefault: file names
		t.Errorf("build -f completion: %q", out)
	}
}

// TestBakeCallAttest: a target with call = "check" runs its checks alone
// (its warning on stdout under its name, exit status 1) while the other
// target builds, with the provenance its attest asks for.
func TestBakeCallAttest(t *testing.T) {
	c, dir := bakeProject(t, map[string]string{
		"Dockerfile": "FROM busybox as base\nRUN echo hi > /hi\n",
		"docker-bake.hcl": `
group "default" { targets = ["lint", "img"] }
target "lint" { call = "check" }
target "img" {
  attest = ["type=provenance,mode=max"]
  output = ["type=oci,dest=img.tar"]
}
`})
	stdout, stderr, code := c.runIn(dir, nil, "bake", "--progress", "plain")
	if code != 1 || !strings.Contains(stdout, `target "lint"`) || !strings.Contains(stdout, "FromAsCasing") {
		t.Fatalf("bake exited %d, want 1 with lint's FromAsCasing warning on stdout:\n%s\n%s", code, stdout, stderr)
	}
	img, err := os.ReadFile(filepath.Join(dir, "img.tar"))
	if err != nil {
		t.Fatalf("target img was not built: %v\n%s", err, stderr)
	}
	if !strings.Contains(string(img), "attestation-manifest") || !strings.Contains(string(img), "https://slsa.dev/provenance/") {
		t.Errorf("img.tar holds no provenance attestation")
	}
	if _, err := os.Stat(filepath.Join(dir, "lint.tar")); err == nil {
		t.Errorf("the check target was built")
	}
	stdout, stderr, code = c.runIn(dir, nil, "bake", "--set", "lint.call=outline", "lint")
	if code == 0 || !strings.Contains(stderr, "--call=outline is not supported") {
		t.Errorf("call = outline: exited %d, want it refused by name:\n%s%s", code, stdout, stderr)
	}
}

// TestBakeSecretsPerTarget: two targets give the same secret id different
// values; the step that mounts it runs for each with its own value rather
// than once with the first target's. (With the cache on, the second would
// reuse the first's result, as a second `builder build` would: secret
// values are not part of a cache key.)
func TestBakeSecretsPerTarget(t *testing.T) {
	c, dir := bakeProject(t, map[string]string{
		"Dockerfile": "FROM busybox\nRUN --mount=type=secret,id=tok cat /run/secrets/tok > /tok\n",
		"a.txt":      "alpha",
		"b.txt":      "beta",
		"docker-bake.hcl": `
group "default" { targets = ["a", "b", "a2"] }
target "a" {
  secret = ["id=tok,src=a.txt"]
  tags = ["sec-a"]
}
target "a2" {
  inherits = ["a"]
  tags = ["sec-a2"]
}
target "b" {
  secret = ["id=tok,src=b.txt"]
  tags = ["sec-b"]
}
`})
	if _, stderr, code := c.runIn(dir, nil, "bake", "--no-cache"); code != 0 {
		t.Fatalf("bake exited %d: %s", code, stderr)
	}
	for img, want := range map[string]string{"sec-a": "alpha", "sec-a2": "alpha", "sec-b": "beta"} {
		if out, errOut, code := c.run("run", img, "cat", "/tok"); code != 0 || out != want {
			t.Errorf("run %s exited %d: /tok %q, want %q %s", img, code, out, want, errOut)
		}
	}
}
