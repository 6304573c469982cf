package bake

import (
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"slices"
	"strings"
	"text/tabwriter"
)

// List writes what `--list` asks for, with buildx's syntax: "targets" or
// "variables", or type=targets|variables[,format=table|json].
func (c *Config) List(w io.Writer, spec string) error {
	kind, format := spec, "table"
	if strings.Contains(spec, "=") {
		kind = ""
		for _, f := range strings.Split(spec, ",") {
			k, v, _ := strings.Cut(f, "=")
			switch strings.TrimSpace(strings.ToLower(k)) {
			case "type":
				kind = v
			case "format":
				format = v
			default:
				return fmt.Errorf("--list: unknown key %q in %q (want type and format)", k, spec)
			}
		}
	}
	if format != "table" && format != "json" {
		return fmt.Errorf("--list: format %q: want table or json", format)
	}
	switch kind {
	case "targets":
		return c.listTargets(w, format)
	case "variables":
		return c.listVariables(w, format)
	}
	return fmt.Errorf("--list: %q: want targets or variables", kind)
}

// listTargets lists targets and groups by name, leaving out those whose
// name starts with _ (private by convention); a group's description
// names its targets.
func (c *Config) listTargets(w io.Writer, format string) error {
	type entry struct {
		Name        string `json:"name"`
		Description string `json:"description,omitempty"`
		Group       bool   `json:"group,omitempty"`
	}
	var list []entry
	for name, t := range c.Targets {
		e := entry{Name: name}
		if t.Description != nil {
			e.Description = *t.Description
		}
		list = append(list, e)
	}
	for name, g := range c.Groups {
		e := entry{Name: name, Description: g.Description, Group: true}
		if len(g.Targets) > 0 {
			names := strings.Join(slices.Sorted(slices.Values(g.Targets)), ", ")
			if e.Description != "" {
				names = e.Description + " (" + names + ")"
			}
			e.Description = names
		}
		list = append(list, e)
	}
	list = slices.DeleteFunc(list, func(e entry) bool { return strings.HasPrefix(e.Name, "_") })
	slices.SortFunc(list, func(a, b entry) int { return cmp.Compare(a.Name, b.Name) })
	if format == "json" {
		return writeJSON(w, list)
	}
	tw := tabwriter.NewWriter(w, 1, 8, 1, '\t', 0)
	fmt.Fprintln(tw, "TARGET\tDESCRIPTION")
	for _, e := range list {
		fmt.Fprintf(tw, "%s\t%s\n", e.Name, e.Description)
	}
	return tw.Flush()
}

func (c *Config) listVariables(w io.Writer, format string) error {
	vars := slices.SortedFunc(slices.Values(c.Variables), func(a, b Variable) int { return cmp.Compare(a.Name, b.Name) })
	if format == "json" {
		return writeJSON(w, vars)
	}
	tw := tabwriter.NewWriter(w, 1, 8, 1, '\t', 0)
	fmt.Fprintln(tw, "VARIABLE\tVALUE\tDESCRIPTION")
	for _, v := range vars {
		value := "<null>"
		if v.Value != nil {
			value = *v.Value
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", v.Name, value, v.Description)
	}
	return tw.Flush()
}

func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}
