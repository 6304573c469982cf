package dockerfile

import (
	"fmt"
	"strings"

	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
)

// stageDep is a stage another depends on, and the instruction that says so.
type stageDep struct {
	stage int
	loc   []parser.Range
}

// checkCycles reports a cycle among the stages' dependencies (FROM a
// stage, COPY --from, RUN --mount from=) before anything is lowered, as
// BuildKit does: over every stage, needed by the target or not, walking
// from the first stage; the error names the stage the walk started from,
// at the instruction that closes the cycle.
func (c *converter) checkCycles() error {
	deps := make([][]stageDep, len(c.stages))
	for i := range c.stages {
		deps[i] = c.stageDeps(i)
	}
	visited := map[int]bool{}
	onPath := map[int]bool{}
	var visit func(i int) []parser.Range
	visit = func(i int) []parser.Range {
		if visited[i] {
			return nil
		}
		visited[i], onPath[i] = true, true
		for _, d := range deps[i] {
			if onPath[d.stage] {
				return d.loc
			}
			if loc := visit(d.stage); loc != nil {
				return loc
			}
		}
		delete(onPath, i)
		return nil
	}
	for i := range c.stages {
		if loc := visit(i); loc != nil {
			return &SourceError{Location: location(c.opt.Filename, loc),
				Err: fmt.Errorf("circular dependency detected on stage: %s", stageLabel(&c.stages[i], i))}
		}
	}
	return nil
}

// stageDeps lists the stages stage i depends on by name or index. Names
// with variables are left to lowering, which expands them.
func (c *converter) stageDeps(i int) []stageDep {
	var out []stageDep
	byName := func(name string, n int) (int, bool) {
		// A named build context of that name replaces the stage.
		if _, isContext := c.opt.Contexts[name]; isContext || name == "" || strings.Contains(name, "$") {
			return 0, false
		}
		return c.stageIndex(name, n)
	}
	s := &c.stages[i]
	if from, ok := byName(s.BaseName, i); ok && strings.EqualFold(c.stages[from].Name, s.BaseName) {
		out = append(out, stageDep{from, s.Location})
	}
	for _, cmd := range s.Commands {
		switch cmd := cmd.(type) {
		case *instructions.CopyCommand:
			if from, ok := byName(cmd.From, len(c.stages)); ok {
				out = append(out, stageDep{from, cmd.Location()})
			}
		case *instructions.RunCommand:
			for _, m := range instructions.GetMounts(cmd) {
				if from, ok := byName(m.From, len(c.stages)); ok {
					out = append(out, stageDep{from, cmd.Location()})
				}
			}
		}
	}
	return out
}
