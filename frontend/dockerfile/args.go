package dockerfile

import (
	"maps"
	"slices"

	"github.com/builder-dev/builder/llb"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
)

// argScope holds the ARGs declared in one scope: the global scope before
// the first FROM, or a stage. A stage sees a global only after declaring it
// again, as the Dockerfile reference says.
type argScope struct {
	parent     *argScope
	buildArgs  map[string]string
	predefined map[string]string
	order      []string
	// values maps each declared name to its value; nil means declared
	// without any value.
	values map[string]*string
}

func newArgScope(parent *argScope, buildArgs map[string]string) *argScope {
	return &argScope{parent: parent, buildArgs: buildArgs, predefined: map[string]string{}, values: map[string]*string{}}
}

// predefine makes name importable into stages without a global ARG line
// (the platform args).
func (a *argScope) predefine(name, value string) { a.predefined[name] = value }

// declare adds name with the value a build arg gives, else the default,
// else the value of the global of that name. A name with none of those is
// declared but unset.
func (a *argScope) declare(name string, def *string) {
	value, ok := a.buildArgs[name]
	if !ok && def != nil {
		value, ok = *def, true
	}
	if !ok && a.parent != nil {
		value, ok = a.parent.lookup(name)
	}
	if !ok {
		value, ok = a.predefined[name]
	}
	if _, seen := a.values[name]; !seen {
		a.order = append(a.order, name)
	}
	if ok {
		a.values[name] = &value
	} else {
		a.values[name] = nil
	}
}

func (a *argScope) lookup(name string) (string, bool) {
	if v := a.values[name]; v != nil {
		return *v, true
	}
	if v, ok := a.predefined[name]; ok {
		return v, true
	}
	return "", false
}

// env returns the declared args that have values, as KEY=VALUE in
// declaration order; in the global scope the predefined (platform) args
// come first, as BuildKit makes them visible there without an ARG line.
func (a *argScope) env() []string {
	var out []string
	for _, name := range llb.SortedKeys(a.predefined) {
		if _, declared := a.values[name]; !declared {
			out = append(out, name+"="+a.predefined[name])
		}
	}
	for _, name := range a.order {
		if v := a.values[name]; v != nil {
			out = append(out, name+"="+*v)
		}
	}
	return out
}

// declareArgs declares every name of a stage's ARG instruction, expanding
// defaults with the stage's variables; a valued ARG sets the variable.
func (c *converter) declareArgs(st *stageState, cmd *instructions.ArgCommand) error {
	for _, kv := range cmd.Args {
		var def *string
		if kv.Value != nil {
			v, err := c.expand(*kv.Value, st.env())
			if err != nil {
				return err
			}
			def = &v
		}
		st.args.declare(kv.Key, def)
		c.consumed[kv.Key] = true
		if v := st.args.values[kv.Key]; v != nil {
			st.setVar(kv.Key, *v)
		}
	}
	return nil
}

// declareGlobals declares the names of an ARG before the first FROM.
func (c *converter) declareGlobals(cmd *instructions.ArgCommand) error {
	for _, kv := range cmd.Args {
		var def *string
		if kv.Value != nil {
			v, err := c.expand(*kv.Value, c.globals.env())
			if err != nil {
				return err
			}
			def = &v
		}
		c.globals.declare(kv.Key, def)
		c.consumed[kv.Key] = true
	}
	return nil
}

// clone copies a stage's scope for a stage built on it: its ARGs stay
// declared, with their values.
func (a *argScope) clone() *argScope {
	n := *a
	n.order = slices.Clone(a.order)
	n.values = maps.Clone(a.values)
	return &n
}
