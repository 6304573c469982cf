package hclfile

import (
	"fmt"
	"github.com/builder-dev/builder/bake/spec"
	ctyjson "github.com/zclconf/go-cty/cty/json"
	"reflect"
	"runtime"
	"strconv"
	"strings"

	"github.com/hashicorp/hcl/v2"
	"github.com/hashicorp/hcl/v2/ext/userfunc"
	"github.com/hashicorp/hcl/v2/hclsyntax"
	hcljson "github.com/hashicorp/hcl/v2/json"
	"github.com/zclconf/go-cty/cty"
	"github.com/zclconf/go-cty/cty/convert"
)

// Source is one bake file: its name (HCL syntax, or HCL's JSON syntax for
// a name ending in .json) and content.
type Source struct {
	Name string
	Src  []byte
}

// Sink receives the targets and groups of the files in the order they are
// defined (a later definition of a name adds to or overrides the earlier).
type Sink struct {
	Target func(*spec.Target)
	Group  func(name string, g *spec.Group)
}

var bakeSchema = &hcl.BodySchema{
	Blocks: []hcl.BlockHeaderSchema{
		{Type: "variable", LabelNames: []string{"name"}},
		{Type: "target", LabelNames: []string{"name"}},
		{Type: "group", LabelNames: []string{"name"}},
	},
}

// Load reads bake files in HCL or JSON syntax (the JSON form is HCL's
// JSON syntax, as in buildx) into sink, and returns their variables. env
// overrides variables (the process environment, as buildx).
func Load(files []Source, env map[string]string, sink Sink) ([]spec.Variable, error) {
	var parsed []*hcl.File
	for _, f := range files {
		var file *hcl.File
		var diags hcl.Diagnostics
		if strings.HasSuffix(f.Name, ".json") {
			file, diags = hcljson.Parse(f.Src, f.Name)
		} else {
			file, diags = hclsyntax.ParseConfig(f.Src, f.Name, hcl.Pos{Line: 1, Column: 1})
		}
		if diags.HasErrors() {
			return nil, fmt.Errorf("bake: %w", diags)
		}
		parsed = append(parsed, file)
	}
	ectx := &hcl.EvalContext{Variables: map[string]cty.Value{}, Functions: stdFunctions()}
	funcs, body, diags := userfunc.DecodeUserFunctions(hcl.MergeFiles(parsed), "function", func() *hcl.EvalContext { return ectx })
	if diags.HasErrors() {
		return nil, fmt.Errorf("bake: %w", diags)
	}
	for name, f := range funcs {
		ectx.Functions[name] = f
	}
	// Top-level attributes are variables (topAttributes), hence partial.
	content, _, diags := body.PartialContent(bakeSchema)
	if diags.HasErrors() {
		return nil, fmt.Errorf("bake: %w", diags)
	}
	top, err := topAttributes(parsed)
	if err != nil {
		return nil, err
	}
	vars, err := resolveVariables(ectx, content.Blocks, top, env)
	if err != nil {
		return nil, err
	}
	te := newTargetEval(ectx, content.Blocks)
	for _, b := range content.Blocks {
		switch b.Type {
		case "group":
			if err := decodeGroup(sink, b, ectx); err != nil {
				return nil, err
			}
		case "target":
			if err := te.decode(sink, b); err != nil {
				return nil, err
			}
		}
	}
	return vars, nil
}

// topAttributes are the attributes at the top of HCL-syntax files, which
// are variables too (JSON files have only "variable" objects: at the top,
// an attribute cannot be told from a block there).
func topAttributes(files []*hcl.File) (hcl.Attributes, error) {
	attrs := hcl.Attributes{}
	for _, f := range files {
		if b, ok := f.Body.(*hclsyntax.Body); ok {
			for _, blk := range b.Blocks {
				switch blk.Type {
				case "variable", "target", "group", "function":
				default:
					return nil, fmt.Errorf("bake: %s: unknown block %q (bake files have variable, target, group and function blocks)", blk.TypeRange, blk.Type)
				}
			}
			for name, a := range b.Attributes {
				attrs[name] = a.AsHCLAttribute()
			}
		}
	}
	return attrs, nil
}

// variable is one variable being resolved: its default's expression, and
// whether the environment may override it (variable blocks only).
type variable struct {
	expr        hcl.Expression
	description string
	env         bool
	rng         hcl.Range
	resolved    bool
	visiting    bool
}

// resolveVariables evaluates every variable into ectx, each after the
// variables its default refers to, with environment overrides.
func resolveVariables(ectx *hcl.EvalContext, blocks hcl.Blocks, top hcl.Attributes, env map[string]string) ([]spec.Variable, error) {
	var out []spec.Variable
	vars := map[string]*variable{}
	for name, a := range top {
		vars[name] = &variable{expr: a.Expr, rng: a.Range}
	}
	for _, b := range blocks {
		if b.Type != "variable" {
			continue
		}
		attrs, diags := b.Body.JustAttributes()
		if diags.HasErrors() {
			return nil, fmt.Errorf("bake: %w", diags)
		}
		v := &variable{env: true, rng: b.DefRange}
		if d, ok := attrs["default"]; ok {
			v.expr = d.Expr
		}
		if d, ok := attrs["description"]; ok {
			var s *string
			if err := decodeValue(d, ectx, reflect.ValueOf(&s).Elem()); err != nil {
				return nil, err
			}
			if s != nil {
				v.description = *s
			}
		}
		vars[b.Labels[0]] = v
	}
	ectx.Variables["BAKE_LOCAL_PLATFORM"] = cty.StringVal("linux/" + runtime.GOARCH)
	for name, v := range vars {
		if err := resolveVariable(ectx, vars, name, env); err != nil {
			return nil, err
		}
		out = append(out, newVariable(name, v.description, ectx.Variables[name]))
	}
	return out, nil
}

func resolveVariable(ectx *hcl.EvalContext, vars map[string]*variable, name string, env map[string]string) error {
	v := vars[name]
	if v.resolved {
		return nil
	}
	if v.visiting {
		return fmt.Errorf("bake: %s: variable %q refers to itself", v.rng, name)
	}
	v.visiting = true
	val := cty.StringVal("")
	if v.expr != nil {
		for _, tr := range v.expr.Variables() {
			if dep := tr.RootName(); vars[dep] != nil {
				if err := resolveVariable(ectx, vars, dep, env); err != nil {
					return err
				}
			}
		}
		var diags hcl.Diagnostics
		if val, diags = v.expr.Value(ectx); diags.HasErrors() {
			return fmt.Errorf("bake: variable %q: %w", name, diags)
		}
	}
	if s, ok := env[name]; ok && v.env {
		var err error
		if val, err = envValue(val, s); err != nil {
			return fmt.Errorf("bake: variable %q from the environment: %w", name, err)
		}
	}
	ectx.Variables[name] = val
	v.resolved = true
	return nil
}

// envValue is an environment override s of a variable whose default is
// def: of the default's type when that is a bool or number, as buildx.
func envValue(def cty.Value, s string) (cty.Value, error) {
	switch def.Type() {
	case cty.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return cty.NilVal, fmt.Errorf("%q is not a bool", s)
		}
		return cty.BoolVal(b), nil
	case cty.Number:
		n, err := cty.ParseNumberVal(s)
		if err != nil {
			return cty.NilVal, fmt.Errorf("%q is not a number", s)
		}
		return n, nil
	}
	return cty.StringVal(s), nil
}

func decodeGroup(sink Sink, b *hcl.Block, ectx *hcl.EvalContext) error {
	attrs, diags := b.Body.JustAttributes()
	if diags.HasErrors() {
		return fmt.Errorf("bake: %w", diags)
	}
	g := &spec.Group{}
	for name, a := range attrs {
		if name == "description" {
			var d *string
			if err := decodeValue(a, ectx, reflect.ValueOf(&d).Elem()); err != nil {
				return err
			}
			if d != nil {
				g.Description = *d
			}
			continue
		}
		if name != "targets" {
			return fmt.Errorf("bake: %s: group %q: unknown attribute %q (groups have targets and description)", a.Range, b.Labels[0], name)
		}
		if err := decodeValue(a, ectx, reflect.ValueOf(&g.Targets).Elem()); err != nil {
			return err
		}
	}
	sink.Group(b.Labels[0], g)
	return nil
}

// decodeValue evaluates a and stores it in field (see storeValue).
func decodeValue(a *hcl.Attribute, ectx *hcl.EvalContext, field reflect.Value) error {
	val, diags := a.Expr.Value(ectx)
	if diags.HasErrors() {
		return fmt.Errorf("bake: %w", diags)
	}
	return storeValue(a, val, field)
}

// ctyType is the HCL type of a Target field.
func ctyType(field reflect.Type) cty.Type {
	switch field {
	case reflect.TypeFor[*string]():
		return cty.String
	case reflect.TypeFor[*bool]():
		return cty.Bool
	case reflect.TypeFor[[]string]():
		return cty.List(cty.String)
	}
	return cty.Map(cty.String)
}

// storeValue stores val, a's value, in field (a *string, *bool, []string
// or map[string]string); a null leaves the field unset, and a null map
// value leaves that key out, as buildx.
func storeValue(a *hcl.Attribute, val cty.Value, field reflect.Value) error {
	if val.IsNull() {
		return nil
	}
	want := ctyType(field.Type())
	val, err := convert.Convert(val, want)
	if err != nil {
		return fmt.Errorf("bake: %s: %s: %w", a.Range, a.Name, err)
	}
	if !val.IsWhollyKnown() {
		return fmt.Errorf("bake: %s: %s: value is not known", a.Range, a.Name)
	}
	switch want {
	case cty.String:
		field.Set(reflect.ValueOf(ptr(val.AsString())))
	case cty.Bool:
		field.Set(reflect.ValueOf(ptr(val.True())))
	case cty.List(cty.String):
		l := []string{}
		for _, e := range val.AsValueSlice() {
			if !e.IsNull() {
				l = append(l, e.AsString())
			}
		}
		field.Set(reflect.ValueOf(l))
	default:
		m := map[string]string{}
		for k, e := range val.AsValueMap() {
			if !e.IsNull() {
				m[k] = e.AsString()
			}
		}
		field.Set(reflect.ValueOf(m))
	}
	return nil
}

func ptr[T any](v T) *T { return &v }

// newVariable is variable name of value v: a string as is, other values
// as JSON.
func newVariable(name, description string, v cty.Value) spec.Variable {
	out := spec.Variable{Name: name, Description: description}
	switch {
	case v.IsNull() || !v.IsWhollyKnown():
	case v.Type() == cty.String:
		out.Value = ptr(v.AsString())
	default:
		if b, err := ctyjson.Marshal(v, v.Type()); err == nil {
			out.Value = ptr(string(b))
		}
	}
	return out
}
