package bake

import (
	"bytes"
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

const listFile = `
variable "TAG" {
  default = "1.0"
  description = "image tag"
}
variable "DEBUG" { default = false }
variable "UNSET" {}
group "default" {
  description = "everything"
  targets = ["app", "tools"]
}
target "_common" { args = { A = "1" } }
target "app" {
  inherits = ["_common"]
  description = "the app"
  name = "app-${tgt}"
  matrix = { tgt = ["foo", "bar"] }
  target = tgt
}
target "tools" { tags = ["tools:${TAG}"] }
`

// TestPrintMatrix: --print of a matrix target shows its group of the
// targets it makes and a default group of the names asked for, as buildx.
func TestPrintMatrix(t *testing.T) {
	c, err := load(t, "docker-bake.hcl", listFile)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		names  []string
		groups map[string][]string
		target []string
	}{
		{[]string{"app"}, map[string][]string{"app": {"app-foo", "app-bar"}, "default": {"app"}}, []string{"app-bar", "app-foo"}},
		{nil, map[string][]string{"app": {"app-foo", "app-bar"}, "default": {"app", "tools"}}, []string{"app-bar", "app-foo", "tools"}},
		{[]string{"tools", "app-foo"}, map[string][]string{"default": {"tools", "app-foo"}}, []string{"app-foo", "tools"}},
	} {
		got, b := printed(t, c, tc.names)
		groups := map[string][]string{}
		for n, g := range got.Group {
			groups[n] = g.Targets
		}
		var names []string
		for n := range got.Target {
			names = append(names, n)
		}
		if !reflect.DeepEqual(groups, tc.groups) || len(names) != len(tc.target) {
			t.Errorf("bake --print %v:\n%s", tc.names, b)
		}
		if foo := got.Target["app-foo"]; foo != nil && (foo["target"] != "foo" || foo["args"].(map[string]any)["A"] != "1") {
			t.Errorf("app-foo printed as %v", foo)
		}
	}
}

// TestList: --list=targets and --list=variables, as tables and as JSON.
func TestList(t *testing.T) {
	c, err := load(t, "docker-bake.hcl", listFile)
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	if err := c.List(&b, "targets"); err != nil {
		t.Fatal(err)
	}
	rows := strings.Split(strings.TrimSpace(b.String()), "\n")
	want := []string{"TARGET DESCRIPTION", "app app-bar, app-foo", "app-bar the app", "app-foo the app", "default everything (app, tools)", "tools"}
	if len(rows) != len(want) {
		t.Fatalf("--list=targets:\n%s", b.String())
	}
	for i, r := range rows {
		if strings.Join(strings.Fields(r), " ") != want[i] {
			t.Errorf("--list=targets row %d = %q, want %q", i, r, want[i])
		}
	}
	b.Reset()
	if err := c.List(&b, "type=variables,format=json"); err != nil {
		t.Fatal(err)
	}
	var vars []Variable
	if err := json.Unmarshal(b.Bytes(), &vars); err != nil {
		t.Fatalf("%v:\n%s", err, b.String())
	}
	if len(vars) != 3 || vars[0].Name != "DEBUG" || *vars[0].Value != "false" || vars[1].Name != "TAG" || *vars[1].Value != "1.0" ||
		vars[1].Description != "image tag" || vars[2].Name != "UNSET" || *vars[2].Value != "" {
		t.Errorf("--list=variables,format=json:\n%s", b.String())
	}
	b.Reset()
	if err := c.List(&b, "variables"); err != nil || !strings.Contains(b.String(), "TAG") || !strings.HasPrefix(b.String(), "VARIABLE") {
		t.Errorf("--list=variables: %v\n%s", err, b.String())
	}
	for _, bad := range []string{"stuff", "type=targets,format=yaml", "type=targets,colour=red"} {
		if err := c.List(&b, bad); err == nil {
			t.Errorf("--list=%s: no error", bad)
		}
	}
}
