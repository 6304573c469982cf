package bake

import (
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func load(t *testing.T, name, src string) (*Config, error) {
	t.Helper()
	dir := writeFiles(t, map[string]string{name: src})
	return Load([]string{filepath.Join(dir, name)}, nil)
}

// TestMatrix: a target with a matrix is one target per combination, named
// by its name attribute, with the matrix's values in its attributes, and
// a group of its label holds them (buildx's matrix targets).
func TestMatrix(t *testing.T) {
	c, err := load(t, "docker-bake.hcl", `
variable "REG" { default = "r.example" }
target "app" {
  name = "app-${tgt}"
  matrix = { tgt = ["foo", "bar"] }
  target = tgt
  tags = ["${REG}/app:${tgt}"]
}
target "lib" {
  name = "lib-${item.os}-${replace(v, ".", "-")}"
  matrix = {
    v = ["1.0", "2.0"]
    item = [{ os = "alpine", base = "alpine:3" }, { os = "debian", base = "debian:12" }]
  }
  args = { BASE = item.base, VERSION = v }
}
target "after" {
  inherits = ["app-bar"]
  tags = ["after"]
  args = { FROM_MATRIX = target.lib-debian-1-0.args.BASE, NAME = target.app-foo.name }
}
`)
	if err != nil {
		t.Fatal(err)
	}
	targets, err := c.Resolve([]string{"app", "lib", "after"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	byName := map[string]*Target{}
	for _, tg := range targets {
		names = append(names, tg.Name)
		byName[tg.Name] = tg
	}
	// Axes in sorted order (item, then v), the first varying slowest.
	want := []string{"app-foo", "app-bar", "lib-alpine-1-0", "lib-alpine-2-0", "lib-debian-1-0", "lib-debian-2-0", "after"}
	if !reflect.DeepEqual(names, want) {
		t.Fatalf("targets %v, want %v", names, want)
	}
	if foo := byName["app-foo"]; *foo.Target != "foo" || foo.Tags[0] != "r.example/app:foo" {
		t.Errorf("app-foo: target %q tags %v", *foo.Target, foo.Tags)
	}
	if l := byName["lib-debian-2-0"]; !reflect.DeepEqual(l.Args, map[string]string{"BASE": "debian:12", "VERSION": "2.0"}) {
		t.Errorf("lib-debian-2-0 args %v", l.Args)
	}
	if a := byName["after"]; *a.Target != "bar" || a.Tags[0] != "after" || a.Args["FROM_MATRIX"] != "debian:12" || a.Args["NAME"] != "app-foo" {
		t.Errorf("after (inherits app-bar): target %q tags %v args %v", *a.Target, a.Tags, a.Args)
	}
	if g := c.Groups["app"]; g == nil || !reflect.DeepEqual(g.Targets, []string{"app-foo", "app-bar"}) {
		t.Errorf("group app = %+v", g)
	}
	for src, msg := range map[string]string{
		`target "x" { matrix = { a = ["1", "2"] } }`:                     `makes the name "x" twice`,
		`target "x" { matrix = ["1"] }`:                                  "matrix must be a map",
		`target "x" { matrix = { a = "1" } }`:                            `matrix "a" must be a list`,
		"target \"x\" {\nname = \"x/${a}\"\nmatrix = { a = [\"1\"] }\n}": `target name "x/1"`,
	} {
		if _, err := load(t, "docker-bake.hcl", src); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: err = %v, want %q", src, err, msg)
		}
	}
}

// TestMatrixJSON: the JSON form of a matrix target.
func TestMatrixJSON(t *testing.T) {
	c, err := load(t, "docker-bake.json", `{"target": {"app": {"name": "app-${tgt}", "matrix": {"tgt": ["a", "b"]}, "target": "${tgt}"}}}`)
	if err != nil {
		t.Fatal(err)
	}
	targets, err := c.Resolve([]string{"app"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(targets) != 2 || targets[1].Name != "app-b" || *targets[1].Target != "b" {
		t.Errorf("targets %+v", targets)
	}
}

// TestTargetReferences: attributes may use other targets' attributes
// (target.NAME.ATTR), inherited ones included, and their own; cycles and
// unknown names are errors.
func TestTargetReferences(t *testing.T) {
	c, err := load(t, "docker-bake.hcl", `
target "common" {
  args = { GO = "1.25" }
  context = "src"
}
target "base" {
  inherits = ["common"]
  tags = ["r.example/base:1", "r.example/base:latest"]
}
target "app" {
  tags = target.base.tags
  args = { GO = target.base.args.GO, CTX = target.base.context }
  dockerfile = "${target.app.context}/app.Dockerfile"
  context = "app"
  cache-from = ["type=registry,ref=${target.base.tags[0]}"]
  target = target.base.target == null ? "none" : target.base.target
}
`)
	if err != nil {
		t.Fatal(err)
	}
	targets, err := c.Resolve([]string{"app"}, nil)
	if err != nil {
		t.Fatal(err)
	}
	app := targets[0]
	if !reflect.DeepEqual(app.Tags, []string{"r.example/base:1", "r.example/base:latest"}) {
		t.Errorf("tags %v", app.Tags)
	}
	if !reflect.DeepEqual(app.Args, map[string]string{"GO": "1.25", "CTX": "src"}) {
		t.Errorf("args %v", app.Args)
	}
	if *app.Dockerfile != "app/app.Dockerfile" || app.CacheFrom[0] != "type=registry,ref=r.example/base:1" || *app.Target != "none" {
		t.Errorf("dockerfile %q cache-from %v target %q", *app.Dockerfile, app.CacheFrom, *app.Target)
	}
	for src, msg := range map[string]string{
		`target "a" { tags = target.b.tags }`:                                                                  `no target named "b"`,
		`target "a" { tags = target.a.tags }`:                                                                  "target.a.tags refers to itself",
		`target "a" { tags = target.b.tags }` + "\n" + `target "b" { tags = target.a.tags }`:                   "refers to itself",
		`target "a" { tags = target.a.colour }`:                                                                `no attribute "colour"`,
		"target \"a\" { tags = target.m.tags }\ntarget \"m\" {\nmatrix = { x = [\"1\"] }\nname = \"m${x}\"\n}": "matrix target",
	} {
		if _, err := load(t, "docker-bake.hcl", src); err == nil || !strings.Contains(err.Error(), msg) {
			t.Errorf("%s: err = %v, want %q", src, err, msg)
		}
	}
}
