package hclfile

import (
	"fmt"
	"github.com/builder-dev/builder/bake/spec"
	"reflect"
	"regexp"
	"slices"
	"sort"
	"sync"

	"github.com/hashicorp/hcl/v2"
	"github.com/zclconf/go-cty/cty"
)

// targetEval decodes target blocks: a block with a matrix stands for one
// target per combination of the matrix's values, and attributes may refer
// to other targets' attributes (target.NAME.ATTRIBUTE), as buildx.
type targetEval struct {
	ectx *hcl.EvalContext
	// blocks are the target blocks by label, in file order (a target
	// defined again in a later file overrides what it sets).
	blocks map[string][]*hcl.Block
	attrs  map[*hcl.Block]hcl.Attributes
	// refs are the attribute values referred to so far, by "NAME.ATTR";
	// busy those being evaluated, to tell a reference cycle.
	refs map[string]cty.Value
	busy map[string]bool
	// made are the targets matrices make, by name, once known.
	made map[string]instance
}

// instance is one target a block stands for: the block, and the context
// its attributes are evaluated in (with a matrix, the combination's).
type instance struct {
	b    *hcl.Block
	ectx *hcl.EvalContext
}

func newTargetEval(ectx *hcl.EvalContext, blocks hcl.Blocks) *targetEval {
	e := &targetEval{ectx: ectx, blocks: map[string][]*hcl.Block{}, attrs: map[*hcl.Block]hcl.Attributes{},
		refs: map[string]cty.Value{}, busy: map[string]bool{}}
	for _, b := range blocks {
		if b.Type == "target" {
			e.blocks[b.Labels[0]] = append(e.blocks[b.Labels[0]], b)
		}
	}
	return e
}

func (e *targetEval) attributes(b *hcl.Block) (hcl.Attributes, error) {
	if a, ok := e.attrs[b]; ok {
		return a, nil
	}
	a, diags := b.Body.JustAttributes()
	if diags.HasErrors() {
		return nil, fmt.Errorf("bake: %w", diags)
	}
	e.attrs[b] = a
	return a, nil
}

// validName is what buildx accepts as a target name (compiled on first
// use, not at every command's start-up).
var validName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-zA-Z0-9_-]+$`) })

// decode gives sink the targets of block b: one, or with a matrix one per
// combination, named by the name attribute, and a group of the block's
// label holding them.
func (e *targetEval) decode(sink Sink, b *hcl.Block) error {
	attrs, err := e.attributes(b)
	if err != nil {
		return err
	}
	label := b.Labels[0]
	combos := []map[string]cty.Value{nil}
	if m, ok := attrs["matrix"]; ok {
		if combos, err = e.matrix(m); err != nil {
			return err
		}
	}
	var names []string
	for _, combo := range combos {
		ectx := e.child(combo)
		t := &spec.Target{}
		if t.Name, err = e.name(b, attrs, ectx); err != nil {
			return err
		}
		tv := reflect.ValueOf(t).Elem()
		for name, a := range attrs {
			if name == "matrix" || name == "name" {
				continue
			}
			i, ok := spec.Fields[name]
			if !ok {
				return fmt.Errorf("bake: %s: target %q: unknown attribute %q", a.Range, label, name)
			}
			val, err := e.value(a, ectx)
			if err != nil {
				return err
			}
			if err := storeValue(a, val, tv.Field(i)); err != nil {
				return err
			}
		}
		if !validName().MatchString(t.Name) {
			return fmt.Errorf("bake: %s: target name %q: only letters, digits, - and _ are allowed", b.DefRange, t.Name)
		}
		if slices.Contains(names, t.Name) {
			return fmt.Errorf("bake: %s: target %q: the matrix makes the name %q twice (give the name attribute the matrix's values)", b.DefRange, label, t.Name)
		}
		names = append(names, t.Name)
		sink.Target(t)
	}
	if _, ok := attrs["matrix"]; ok {
		sink.Group(label, &spec.Group{Targets: names})
	}
	return nil
}

func (e *targetEval) child(combo map[string]cty.Value) *hcl.EvalContext {
	if combo == nil {
		return e.ectx
	}
	ectx := e.ectx.NewChild()
	ectx.Variables = combo
	return ectx
}

// name is the name of the target block b stands for in ectx: its name
// attribute's value, else its label.
func (e *targetEval) name(b *hcl.Block, attrs hcl.Attributes, ectx *hcl.EvalContext) (string, error) {
	a, ok := attrs["name"]
	if !ok {
		return b.Labels[0], nil
	}
	val, err := e.value(a, ectx)
	if err != nil {
		return "", err
	}
	if val.IsNull() || val.Type() != cty.String {
		return "", fmt.Errorf("bake: %s: target %q: name must be a string", a.Range, b.Labels[0])
	}
	return val.AsString(), nil
}

// instances are the targets name refers to: the blocks of that label, or
// the combination of a matrix that makes that name.
func (e *targetEval) instances(name string) ([]instance, error) {
	var out []instance
	for _, b := range e.blocks[name] {
		attrs, err := e.attributes(b)
		if err != nil {
			return nil, err
		}
		if _, ok := attrs["matrix"]; ok {
			return nil, fmt.Errorf("%q is a matrix target; refer to one of the targets it makes", name)
		}
		out = append(out, instance{b: b, ectx: e.ectx})
	}
	if len(out) > 0 {
		return out, nil
	}
	if e.made == nil {
		e.made = map[string]instance{}
		for _, bs := range e.blocks {
			for _, b := range bs {
				attrs, err := e.attributes(b)
				if err != nil {
					return nil, err
				}
				m, ok := attrs["matrix"]
				if !ok {
					continue
				}
				combos, err := e.matrix(m)
				if err != nil {
					return nil, err
				}
				for _, combo := range combos {
					ectx := e.child(combo)
					n, err := e.name(b, attrs, ectx)
					if err != nil {
						return nil, err
					}
					e.made[n] = instance{b: b, ectx: ectx}
				}
			}
		}
	}
	if in, ok := e.made[name]; ok {
		return []instance{in}, nil
	}
	return nil, fmt.Errorf("no target named %q", name)
}

// matrix evaluates a matrix attribute (a map of names to lists of values)
// into every combination of its values: the names in sorted order, the
// first varying slowest.
func (e *targetEval) matrix(a *hcl.Attribute) ([]map[string]cty.Value, error) {
	val, diags := a.Expr.Value(e.ectx)
	if diags.HasErrors() {
		return nil, fmt.Errorf("bake: %w", diags)
	}
	if val.IsNull() || !(val.Type().IsObjectType() || val.Type().IsMapType()) {
		return nil, fmt.Errorf("bake: %s: matrix must be a map of names to lists of values", a.Range)
	}
	axes := val.AsValueMap()
	keys := make([]string, 0, len(axes))
	for k := range axes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	combos := []map[string]cty.Value{{}}
	for _, k := range keys {
		v := axes[k]
		if v.IsNull() || !v.CanIterateElements() || v.Type().IsMapType() || v.Type().IsObjectType() {
			return nil, fmt.Errorf("bake: %s: matrix %q must be a list of values", a.Range, k)
		}
		var next []map[string]cty.Value
		for _, c := range combos {
			for _, x := range v.AsValueSlice() {
				n := map[string]cty.Value{k: x}
				for ck, cv := range c {
					n[ck] = cv
				}
				next = append(next, n)
			}
		}
		combos = next
	}
	return combos, nil
}

// value evaluates a in ectx with the target attributes it refers to.
func (e *targetEval) value(a *hcl.Attribute, ectx *hcl.EvalContext) (cty.Value, error) {
	refs := map[string]map[string]cty.Value{}
	for _, tr := range a.Expr.Variables() {
		if tr.RootName() != "target" {
			continue
		}
		name, attr, ok := targetRef(tr)
		if !ok {
			return cty.NilVal, fmt.Errorf("bake: %s: a reference to a target is target.NAME.ATTRIBUTE", tr.SourceRange())
		}
		v, err := e.attr(name, attr, tr.SourceRange())
		if err != nil {
			return cty.NilVal, err
		}
		if refs[name] == nil {
			refs[name] = map[string]cty.Value{}
		}
		refs[name][attr] = v
	}
	if len(refs) > 0 {
		objs := map[string]cty.Value{}
		for name, attrs := range refs {
			objs[name] = cty.ObjectVal(attrs)
		}
		ectx = ectx.NewChild()
		ectx.Variables = map[string]cty.Value{"target": cty.ObjectVal(objs)}
	}
	val, diags := a.Expr.Value(ectx)
	if diags.HasErrors() {
		return cty.NilVal, fmt.Errorf("bake: %w", diags)
	}
	return val, nil
}

// targetRef is the target and attribute a traversal target.NAME.ATTR
// (or target["NAME"].ATTR) names.
func targetRef(tr hcl.Traversal) (name, attr string, ok bool) {
	if len(tr) < 3 {
		return "", "", false
	}
	switch s := tr[1].(type) {
	case hcl.TraverseAttr:
		name = s.Name
	case hcl.TraverseIndex:
		if s.Key.Type() != cty.String {
			return "", "", false
		}
		name = s.Key.AsString()
	default:
		return "", "", false
	}
	a, ok := tr[2].(hcl.TraverseAttr)
	return name, a.Name, ok
}

// attr is attribute attr of target name as its references see it: the
// value its last definition gives, else its nearest parent's (inherits,
// later parents first), else null.
func (e *targetEval) attr(name, attr string, rng hcl.Range) (cty.Value, error) {
	key := name + "." + attr
	if v, ok := e.refs[key]; ok {
		return v, nil
	}
	i, known := spec.Fields[attr]
	if !known && attr != "name" {
		return cty.NilVal, fmt.Errorf("bake: %s: target.%s: targets have no attribute %q", rng, key, attr)
	}
	if e.busy[key] {
		return cty.NilVal, fmt.Errorf("bake: %s: target.%s refers to itself", rng, key)
	}
	e.busy[key] = true
	defer delete(e.busy, key)
	blocks, err := e.instances(name)
	if err != nil {
		return cty.NilVal, fmt.Errorf("bake: %s: target.%s: %w", rng, key, err)
	}
	want := cty.String
	if known {
		want = ctyType(reflect.TypeFor[spec.Target]().Field(i).Type)
	}
	v := cty.NullVal(want)
	var parents []string
	for _, in := range slices.Backward(blocks) {
		attrs, err := e.attributes(in.b)
		if err != nil {
			return cty.NilVal, err
		}
		if a, ok := attrs[attr]; ok && attr != "name" {
			val, err := e.value(a, in.ectx)
			if err != nil {
				return cty.NilVal, err
			}
			if v, err = storedValue(a, val, i, known); err != nil {
				return cty.NilVal, err
			}
			break
		}
		if a, ok := attrs["inherits"]; ok && parents == nil {
			val, err := e.value(a, in.ectx)
			if err != nil {
				return cty.NilVal, err
			}
			if err := storeValue(a, val, reflect.ValueOf(&parents).Elem()); err != nil {
				return cty.NilVal, err
			}
		}
	}
	if v.IsNull() && attr != "name" {
		for _, p := range slices.Backward(parents) {
			pv, err := e.attr(p, attr, rng)
			if err != nil {
				return cty.NilVal, err
			}
			if !pv.IsNull() {
				v = pv
				break
			}
		}
	}
	if v.IsNull() && attr == "name" {
		v = cty.StringVal(name)
	}
	e.refs[key] = v
	return v, nil
}

// storedValue is val as field i of a Target holds it (null if unset), so
// that a reference sees the attribute with its declared type.
func storedValue(a *hcl.Attribute, val cty.Value, i int, known bool) (cty.Value, error) {
	if !known {
		return val, nil
	}
	t := &spec.Target{}
	f := reflect.ValueOf(t).Elem().Field(i)
	if err := storeValue(a, val, f); err != nil {
		return cty.NilVal, err
	}
	if f.IsNil() {
		return cty.NullVal(ctyType(f.Type())), nil
	}
	switch x := f.Interface().(type) {
	case *string:
		return cty.StringVal(*x), nil
	case *bool:
		return cty.BoolVal(*x), nil
	case []string:
		if len(x) == 0 {
			return cty.ListValEmpty(cty.String), nil
		}
		l := make([]cty.Value, len(x))
		for j, s := range x {
			l[j] = cty.StringVal(s)
		}
		return cty.ListVal(l), nil
	default:
		m := x.(map[string]string)
		if len(m) == 0 {
			return cty.MapValEmpty(cty.String), nil
		}
		vals := map[string]cty.Value{}
		for k, s := range m {
			vals[k] = cty.StringVal(s)
		}
		return cty.MapVal(vals), nil
	}
}
