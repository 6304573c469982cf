// Package checks runs BuildKit's build checks (its linter rules, with
// their names and messages) on a Dockerfile: the warnings a build prints
// and what `builder build --check` reports. It reads the Dockerfile as the
// frontend does and resolves base images only for their environment.
package checks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sort"
	"strings"

	"github.com/builder-dev/builder/frontend/dockerfile"
	"github.com/builder-dev/builder/llb"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/linter"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	"github.com/moby/patternmatcher"
)

// ErrOptions is the class of errors in the check options (the
// "# check=" directive or dockerfile.CheckBuildArg), which fail a build as BuildKit's.
var ErrOptions = errors.New("invalid check options")

// Warning is one finding of the build checks.
type Warning struct {
	Rule string `json:"rule"`
	// Description says what the rule is about; Detail what this finding
	// is (one line).
	Description string `json:"description"`
	Detail      string `json:"detail"`
	URL         string `json:"url,omitempty"`
	File        string `json:"file"`
	Line        int    `json:"line"`
}

func (w Warning) String() string {
	return fmt.Sprintf("%s:%d: %s: %s", w.File, w.Line, w.Rule, w.Detail)
}

// Result is what the checks of one Dockerfile found.
type Result struct {
	Warnings []Warning
	// Err is set when the check options say error=true and a rule fired.
	Err error
}

// Options selects what Check looks at.
type Options struct {
	// AllStages checks every stage; otherwise only the stages the target
	// (opt.Target, else the last) needs, as a build does.
	AllStages bool
}

// Check runs the build checks (BuildKit's rules, with their names and
// messages) on opt.Source. Base images are resolved for their environment
// (UndefinedVar); use the resolver of the build so nothing is fetched twice.
// An error is a Dockerfile that does not parse or an invalid check option
// (ErrOptions); a base image that cannot be resolved only leaves its
// stage's variables unknown, as in BuildKit.
func Check(ctx context.Context, opt dockerfile.Options, resolver dockerfile.ImageResolver, co Options) (*Result, error) {
	if opt.Filename == "" {
		opt.Filename = "Dockerfile"
	}
	cfgText, _, _, _ := parser.ParseDirective("check", opt.Source)
	if v, ok := opt.BuildArgs[dockerfile.CheckBuildArg]; ok {
		cfgText = v
	}
	cfg, err := linter.ParseLintOptions(cfgText)
	if err != nil {
		return nil, fmt.Errorf("%s: %w %q: %v", opt.Filename, ErrOptions, cfgText, err)
	}
	ck := &checker{ctx: ctx, opt: opt, resolver: resolver, facts: map[int]*stageFacts{}}
	cfg.Warn = func(rule, description, url, detail string, loc []parser.Range) {
		w := Warning{Rule: rule, Description: description, Detail: detail, URL: url, File: opt.Filename}
		if len(loc) > 0 {
			w.Line = loc[0].Start.Line
		}
		ck.warnings = append(ck.warnings, w)
	}
	lint := linter.New(cfg)
	parsed, err := parser.Parse(bytes.NewReader(opt.Source))
	if err != nil {
		return nil, dockerfile.ParseError(opt.Filename, err)
	}
	for _, w := range parsed.Warnings {
		if w.URL == linter.RuleNoEmptyContinuation.URL && w.Location != nil {
			lint.Run(&linter.RuleNoEmptyContinuation, []parser.Range{*w.Location}, linter.RuleNoEmptyContinuation.Format())
		}
	}
	// instructions.Parse runs the rules that are about syntax only:
	// MaintainerDeprecated, StageNameCasing, FromAsCasing.
	stages, metaArgs, err := instructions.Parse(parsed.AST, lint)
	if err != nil {
		return nil, dockerfile.ParseError(opt.Filename, err)
	}
	ck.lex = shell.NewLex(parsed.EscapeToken)
	ck.stages = stages
	checkStageNames(stages, lint)
	checkCasing(stages, lint)
	ck.checkDefaultBaseNames(metaArgs, lint)
	ck.globals = ck.metaArgs(metaArgs, opt.BuildArgs)
	if len(opt.Excludes) > 0 {
		if m, err := patternmatcher.New(opt.Excludes); err == nil {
			ck.ignore = m
		}
	}
	need := ck.needed(co.AllStages)
	for i := range stages {
		if need[i] {
			if err := ck.checkStage(i, lint); err != nil {
				return nil, err
			}
		}
	}
	sort.SliceStable(ck.warnings, func(a, b int) bool { return ck.warnings[a].Line < ck.warnings[b].Line })
	return &Result{Warnings: ck.warnings, Err: lint.Error()}, nil
}

type checker struct {
	ctx      context.Context
	opt      dockerfile.Options
	resolver dockerfile.ImageResolver
	lex      *shell.Lex
	stages   []instructions.Stage
	globals  *checkEnv
	ignore   *patternmatcher.PatternMatcher
	warnings []Warning
	// What each checked stage ends with, for the stages built on it.
	facts map[int]*stageFacts
}

// checkEnv is a shell.EnvGetter over an ordered set of variables; declared
// holds ARG names declared without a value, which count as defined.
type checkEnv struct {
	keys     []string
	vals     map[string]string
	declared map[string]bool
	// unknown is set for a stage on an image that could not be resolved:
	// every variable counts as defined, so nothing is reported undefined.
	unknown bool
}

func newCheckEnv() *checkEnv {
	return &checkEnv{vals: map[string]string{}, declared: map[string]bool{}}
}

func (e *checkEnv) Get(k string) (string, bool) {
	v, ok := e.vals[k]
	return v, ok || e.unknown
}

func (e *checkEnv) Keys() []string { return slices.Clone(e.keys) }

func (e *checkEnv) set(k, v string) {
	if _, ok := e.vals[k]; !ok {
		e.keys = append(e.keys, k)
	}
	e.vals[k] = v
}

func (e *checkEnv) clone() *checkEnv {
	c := newCheckEnv()
	c.unknown = e.unknown
	for _, k := range e.keys {
		c.set(k, e.vals[k])
	}
	for k := range e.declared {
		c.declared[k] = true
	}
	return c
}

// metaArgs evaluates the ARGs before the first FROM, with buildArgs (nil:
// the defaults only) over the predefined platform args.
func (ck *checker) metaArgs(args []instructions.ArgCommand, buildArgs map[string]string) *checkEnv {
	env := newCheckEnv()
	buildPlatform := ck.opt.BuildPlatform
	if buildPlatform.Architecture == "" {
		buildPlatform = ck.opt.TargetPlatform
	}
	platformArgs := dockerfile.PlatformArgs(buildPlatform, ck.opt.TargetPlatform)
	for _, k := range llb.SortedKeys(platformArgs) {
		env.set(k, platformArgs[k])
	}
	for _, a := range args {
		for _, kv := range a.Args {
			env.declared[kv.Key] = true
			if v, ok := buildArgs[kv.Key]; ok {
				env.set(kv.Key, v)
			} else if kv.Value != nil {
				v, _, err := ck.lex.ProcessWord(*kv.Value, env)
				if err == nil {
					env.set(kv.Key, v)
				}
			}
		}
	}
	return env
}

// checkDefaultBaseNames reports base names that are not image references
// when every global ARG has its default (InvalidDefaultArgInFrom).
func (ck *checker) checkDefaultBaseNames(args []instructions.ArgCommand, lint *linter.Linter) {
	env := ck.metaArgs(args, nil)
	for _, st := range ck.stages {
		name, err := ck.lex.ProcessWordWithMatches(st.BaseName, env)
		if err != nil {
			return
		}
		if !validImageName(name.Result) {
			lint.Run(&linter.RuleInvalidDefaultArgInFrom, st.Location, linter.RuleInvalidDefaultArgInFrom.Format(st.BaseName))
		}
	}
}

// stageByName returns the index of the stage called name before stage
// limit, or -1.
func (ck *checker) stageByName(name string, limit int) int {
	name = strings.ToLower(name)
	for i := limit - 1; i >= 0; i-- {
		if ck.stages[i].Name == name {
			return i
		}
	}
	return -1
}

// needed marks the stages to check: all, or those the target depends on
// through FROM, COPY/ADD --from and RUN --mount from=.
func (ck *checker) needed(all bool) []bool {
	need := make([]bool, len(ck.stages))
	if all {
		for i := range need {
			need[i] = true
		}
		return need
	}
	target := len(ck.stages) - 1
	if ck.opt.Target != "" {
		if i := ck.stageByName(ck.opt.Target, len(ck.stages)); i >= 0 {
			target = i
		}
	}
	var visit func(int)
	visit = func(i int) {
		if i < 0 || need[i] {
			return
		}
		need[i] = true
		st := ck.stages[i]
		if name, err := ck.lex.ProcessWordWithMatches(st.BaseName, ck.globals); err == nil {
			visit(ck.stageByName(name.Result, i))
		}
		for _, cmd := range st.Commands {
			for _, from := range commandSources(cmd) {
				visit(ck.stageRef(from, i))
			}
		}
	}
	visit(target)
	return need
}

// stageRef resolves a --from value (a name or an index) seen in stage i.
func (ck *checker) stageRef(from string, i int) int {
	if from == "" {
		return -1
	}
	if n := ck.stageByName(from, i); n >= 0 {
		return n
	}
	var idx int
	if _, err := fmt.Sscanf(from, "%d", &idx); err == nil && fmt.Sprint(idx) == from && idx >= 0 && idx < i {
		return idx
	}
	return -1
}

// commandSources returns the stages or images a command reads from.
func commandSources(cmd instructions.Command) []string {
	switch c := cmd.(type) {
	case *instructions.CopyCommand:
		return []string{c.From}
	case *instructions.RunCommand:
		var out []string
		for _, m := range instructions.GetMounts(c) {
			out = append(out, m.From)
		}
		return out
	}
	return nil
}

// validImageName reports whether name is an image reference FROM accepts
// (a stage name is one too).
func validImageName(s string) bool {
	if s == "" || strings.HasSuffix(s, ":") || strings.HasSuffix(s, "@") {
		return false
	}
	_, err := name.ParseReference(s)
	return err == nil
}
