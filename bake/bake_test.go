package bake

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func resolve(t *testing.T, dir string, env map[string]string, names, sets []string) map[string]*Target {
	t.Helper()
	files, err := Files(dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	c, err := Load(files, env)
	if err != nil {
		t.Fatal(err)
	}
	targets, err := c.Resolve(names, sets)
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]*Target{}
	var order []string
	for _, tg := range targets {
		out[tg.Name] = tg
		order = append(order, tg.Name)
	}
	out["\x00order"] = &Target{Tags: order}
	return out
}

const hclFile = `
variable "TAG" { default = "latest" }
variable "REPO" { default = "example.com/${lower(OWNER)}${OWNER_SUFFIX}" }
variable "OWNER" { default = "Team" }
variable "DEBUG" { default = false }
OWNER_SUFFIX = ""

function "tag" {
  params = [name]
  result = "${REPO}/${name}:${TAG}"
}

group "default" { targets = ["app", "tools"] }
group "all" { targets = ["default", "base"] }

target "base" {
  dockerfile = "Dockerfile.base"
  args = { GO = "1.22", UNSET = null }
  labels = { "org.opencontainers.image.vendor" = "acme" }
  cache-from = ["type=local,src=/c1"]
}

target "app" {
  inherits = ["base"]
  target = "app"
  tags = [tag("app")]
  args = { MODE = DEBUG ? "debug" : "release" }
  cache-from = ["type=local,src=/c2"]
}

target "tools" {
  inherits = ["app"]
  target = "tools"
  tags = [tag("tools"), "${REPO}/tools:extra"]
}
`

func TestHCLInheritanceGroupsVariables(t *testing.T) {
	dir := writeFiles(t, map[string]string{"docker-bake.hcl": hclFile})
	got := resolve(t, dir, map[string]string{"TAG": "v1", "DEBUG": "true"}, nil, nil)
	if order := got["\x00order"].Tags; !reflect.DeepEqual(order, []string{"app", "tools"}) {
		t.Fatalf("default group resolved to %v, want [app tools]", order)
	}
	app := got["app"]
	if want := []string{"example.com/team/app:v1"}; !reflect.DeepEqual(app.Tags, want) {
		t.Errorf("app tags %v, want %v", app.Tags, want)
	}
	if want := map[string]string{"GO": "1.22", "MODE": "debug"}; !reflect.DeepEqual(app.Args, want) {
		t.Errorf("app args %v, want %v (maps merge, null leaves the key out, env DEBUG=true is a bool)", app.Args, want)
	}
	if *app.Dockerfile != "Dockerfile.base" || *app.Context != "." || *app.Target != "app" {
		t.Errorf("app dockerfile %q context %q target %q", *app.Dockerfile, *app.Context, *app.Target)
	}
	if want := []string{"type=local,src=/c1", "type=local,src=/c2"}; !reflect.DeepEqual(app.CacheFrom, want) {
		t.Errorf("app cache-from %v, want %v (appended)", app.CacheFrom, want)
	}
	tools := got["tools"]
	if want := []string{"example.com/team/tools:v1", "example.com/team/tools:extra"}; !reflect.DeepEqual(tools.Tags, want) {
		t.Errorf("tools tags %v, want %v (own tags replace the parent's)", tools.Tags, want)
	}
	if tools.Labels["org.opencontainers.image.vendor"] != "acme" || *tools.Target != "tools" {
		t.Errorf("tools did not inherit through app from base: %+v", tools)
	}

	all := resolve(t, dir, nil, []string{"all"}, nil)
	if order := all["\x00order"].Tags; !reflect.DeepEqual(order, []string{"app", "tools", "base"}) {
		t.Errorf("group of groups resolved to %v", order)
	}
	if all["app"].Args["MODE"] != "release" || all["app"].Tags[0] != "example.com/team/app:latest" {
		t.Errorf("defaults without environment: %+v", all["app"])
	}
}

func TestSetOverrides(t *testing.T) {
	dir := writeFiles(t, map[string]string{"docker-bake.hcl": hclFile})
	got := resolve(t, dir, nil, []string{"app", "tools"}, []string{
		"*.args.GO=1.23",
		"app.tags=other:1",
		"tools.tags+=more:2",
		"*.platform=linux/amd64,linux/arm64",
		"app.no-cache=true",
		"tools.push=true",
	})
	if got["app"].Args["GO"] != "1.23" || got["tools"].Args["GO"] != "1.23" {
		t.Errorf("*.args.GO not applied: %v %v", got["app"].Args, got["tools"].Args)
	}
	if !reflect.DeepEqual(got["app"].Tags, []string{"other:1"}) {
		t.Errorf("app tags %v", got["app"].Tags)
	}
	if want := []string{"example.com/team/tools:latest", "example.com/team/tools:extra", "more:2"}; !reflect.DeepEqual(got["tools"].Tags, want) {
		t.Errorf("tools tags %v, want %v", got["tools"].Tags, want)
	}
	if !reflect.DeepEqual(got["app"].Platforms, []string{"linux/amd64", "linux/arm64"}) || !*got["app"].NoCache {
		t.Errorf("app platforms %v no-cache %v", got["app"].Platforms, got["app"].NoCache)
	}
	if !reflect.DeepEqual(got["tools"].Outputs, []string{"type=registry"}) {
		t.Errorf("tools.push=true outputs %v", got["tools"].Outputs)
	}
	c, _ := Load([]string{filepath.Join(dir, "docker-bake.hcl")}, nil)
	for _, bad := range []string{"app.nosuch=1", "nomatch.tags=x", "app.args=x", "app"} {
		if _, err := c.Resolve([]string{"app"}, []string{bad}); err == nil {
			t.Errorf("--set %s: no error", bad)
		}
	}
}

func TestJSONAndOverrideFile(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"docker-bake.json": `{
  "variable": {"TAG": {"default": "dev"}},
  "group": {"default": {"targets": ["web"]}},
  "target": {
    "common": {"args": {"A": "1"}, "labels": {"l": "x"}},
    "web": {"inherits": ["common"], "context": "web", "tags": ["web:${TAG}"], "args": {"B": "2"}}
  }
}`,
		"docker-bake.override.hcl": `target "web" { args = { A = "override" } }`,
	})
	got := resolve(t, dir, nil, nil, nil)["web"]
	if want := map[string]string{"A": "override", "B": "2"}; !reflect.DeepEqual(got.Args, want) {
		t.Errorf("args %v, want %v", got.Args, want)
	}
	if *got.Context != "web" || !reflect.DeepEqual(got.Tags, []string{"web:dev"}) || got.Labels["l"] != "x" {
		t.Errorf("web resolved to %+v", got)
	}
}

func TestCompose(t *testing.T) {
	dir := writeFiles(t, map[string]string{"compose.yaml": `
services:
  db:
    image: postgres:16
  api:
    image: ${REGISTRY:-local}/api:$$literal
    build:
      context: ./api
      dockerfile: api.Dockerfile
      target: prod
      args:
        - VERSION=${VERSION:-0}
        - FROM_ENV
      labels:
        team: core
      secrets: [token]
      extra_hosts: ["db.local:10.0.0.2"]
  worker:
    build: ./worker
secrets:
  token:
    environment: TOKEN
`})
	got := resolve(t, dir, map[string]string{"VERSION": "3", "FROM_ENV": "e"}, nil, nil)
	if order := got["\x00order"].Tags; !reflect.DeepEqual(order, []string{"api", "worker"}) {
		t.Fatalf("default group %v, want the services with a build section", order)
	}
	api := got["api"]
	if *api.Context != filepath.Join(dir, "api") || *api.Dockerfile != "api.Dockerfile" || *api.Target != "prod" {
		t.Errorf("api context %q dockerfile %q target %q", *api.Context, *api.Dockerfile, *api.Target)
	}
	if want := map[string]string{"VERSION": "3", "FROM_ENV": "e"}; !reflect.DeepEqual(api.Args, want) {
		t.Errorf("api args %v, want %v", api.Args, want)
	}
	if !reflect.DeepEqual(api.Tags, []string{"local/api:$literal"}) || api.Labels["team"] != "core" {
		t.Errorf("api tags %v labels %v", api.Tags, api.Labels)
	}
	if !reflect.DeepEqual(api.Secrets, []string{"id=token,env=TOKEN"}) || api.ExtraHosts["db.local"] != "10.0.0.2" {
		t.Errorf("api secrets %v extra hosts %v", api.Secrets, api.ExtraHosts)
	}
	if *got["worker"].Context != filepath.Join(dir, "worker") || *got["worker"].Dockerfile != "Dockerfile" {
		t.Errorf("worker %+v", got["worker"])
	}
}

func TestPrint(t *testing.T) {
	dir := writeFiles(t, map[string]string{"docker-bake.hcl": hclFile})
	c, err := Load([]string{filepath.Join(dir, "docker-bake.hcl")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	got, b := printed(t, c, []string{"app"})
	if !reflect.DeepEqual(got.Group["default"].Targets, []string{"app"}) {
		t.Errorf("group %v", got.Group)
	}
	app := got.Target["app"]
	if app["context"] != "." || app["dockerfile"] != "Dockerfile.base" || app["target"] != "app" || app["inherits"] != nil {
		t.Errorf("printed app: %s", b)
	}
}

func TestErrors(t *testing.T) {
	for name, src := range map[string]string{
		"unknown attribute": `target "a" { colour = "red" }`,
		"inherit cycle":     `target "a" { inherits = ["b"] }` + "\n" + `target "b" { inherits = ["a"] }`,
		"missing parent":    `target "a" { inherits = ["nope"] }`,
		"variable cycle":    `variable "A" { default = B }` + "\n" + `variable "B" { default = A }` + "\n" + `target "a" {}`,
		"group cycle":       `group "default" { targets = ["g"] }` + "\n" + `group "g" { targets = ["default"] }`,
		"bad type":          `target "a" { tags = { x = 1 } }`,
		"unknown block":     `targte "a" {}` + "\n" + `target "a" {}`,
	} {
		dir := writeFiles(t, map[string]string{"docker-bake.hcl": src})
		c, err := Load([]string{filepath.Join(dir, "docker-bake.hcl")}, nil)
		if err == nil {
			_, err = c.Resolve([]string{"default"}, nil)
			if !strings.Contains(src, `group "default"`) {
				_, err = c.Resolve([]string{"a"}, nil)
			}
		}
		if err == nil {
			t.Errorf("%s: no error", name)
		} else {
			t.Logf("%s: %v", name, err)
		}
	}
}

// printed is what `bake --print names` prints, decoded, and as printed.
func printed(t *testing.T, c *Config, names []string) (got struct {
	Group  map[string]struct{ Targets []string }
	Target map[string]map[string]any
}, b []byte) {
	t.Helper()
	targets, err := c.Resolve(names, nil)
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	if err := c.Print(&buf, names, targets); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
		t.Fatal(err)
	}
	return got, buf.Bytes()
}

// TestCallAttest reads call and attest as buildx does: attestations merge
// by type through inherits and --set (the last of a type wins), call is a
// plain attribute.
func TestCallAttest(t *testing.T) {
	dir := writeFiles(t, map[string]string{"docker-bake.hcl": `
target "base" {
  attest = ["type=sbom", "type=provenance,mode=min"]
}
target "app" {
  inherits = ["base"]
  attest = ["type=provenance,mode=max"]
}
target "lint" {
  inherits = ["app"]
  call = "check"
}
`})
	got := resolve(t, dir, nil, []string{"app", "lint"}, []string{"lint.attest=type=sbom,disabled=true"})
	if want := []string{"type=sbom", "type=provenance,mode=max"}; !reflect.DeepEqual(got["app"].Attest, want) {
		t.Errorf("app attest = %q, want %q", got["app"].Attest, want)
	}
	if want := []string{"type=sbom,disabled=true", "type=provenance,mode=max"}; !reflect.DeepEqual(got["lint"].Attest, want) {
		t.Errorf("lint attest = %q, want %q", got["lint"].Attest, want)
	}
	if got["app"].Call != nil || got["lint"].Call == nil || *got["lint"].Call != "check" {
		t.Errorf("call: app %v, lint %v; want unset and check", got["app"].Call, got["lint"].Call)
	}
	jdir := writeFiles(t, map[string]string{"docker-bake.json": `{"target": {"x": {"call": "check", "attest": ["type=sbom"]}}}`})
	if x := resolve(t, jdir, nil, []string{"x"}, nil)["x"]; x.Call == nil || *x.Call != "check" || !reflect.DeepEqual(x.Attest, []string{"type=sbom"}) {
		t.Errorf("JSON target x: call %v attest %q", x.Call, x.Attest)
	}
}
