// Package vars holds the Dockerfile's variables as BuildKit scopes them:
// ARGs per scope (global or stage), the predefined proxy args, and
// environment lists of KEY=VALUE.
package vars

import (
	"maps"
	"slices"

	"github.com/builder-dev/builder/llb"
)

// Scope holds the ARGs declared in one scope: the global scope before
// the first FROM, or a stage. A stage sees a global only after declaring it
// again, as the Dockerfile reference says.
type Scope struct {
	parent     *Scope
	buildArgs  map[string]string
	predefined map[string]string
	order      []string
	// values maps each declared name to its value; nil means declared
	// without any value.
	values map[string]*string
}

// NewScope returns an empty scope below parent (nil for the global scope)
// with the build args given on the command line.
func NewScope(parent *Scope, buildArgs map[string]string) *Scope {
	return &Scope{parent: parent, buildArgs: buildArgs, predefined: map[string]string{}, values: map[string]*string{}}
}

// Predefine makes name importable into stages without a global ARG line
// (the platform args).
func (a *Scope) Predefine(name, value string) { a.predefined[name] = value }

// Predefined is the value name was predefined with, or "".
func (a *Scope) Predefined(name string) string { return a.predefined[name] }

// Declare adds name with the value a build arg gives, else the default,
// else the value of the global of that name. A name with none of those is
// declared but unset.
func (a *Scope) Declare(name string, def *string) {
	value, ok := a.buildArgs[name]
	if !ok && def != nil {
		value, ok = *def, true
	}
	if !ok && a.parent != nil {
		value, ok = a.parent.Lookup(name)
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

// Lookup is the value of name: declared with a value, or predefined.
func (a *Scope) Lookup(name string) (string, bool) {
	if v := a.values[name]; v != nil {
		return *v, true
	}
	if v, ok := a.predefined[name]; ok {
		return v, true
	}
	return "", false
}

// Declared is the names declared in this scope, in declaration order.
func (a *Scope) Declared() []string { return a.order }

// Env returns the declared args that have values, as KEY=VALUE in
// declaration order; in the global scope the predefined (platform) args
// come first, as BuildKit makes them visible there without an ARG line.
func (a *Scope) Env() []string {
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

// Clone copies a stage's scope for a stage built on it: its ARGs stay
// declared, with their values.
func (a *Scope) Clone() *Scope {
	n := *a
	n.order = slices.Clone(a.order)
	n.values = maps.Clone(a.values)
	return &n
}
