package dockerfile

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"path"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/builder-dev/builder/frontend/dockerfile/internal/suggest"
	"github.com/builder-dev/builder/frontend/dockerfile/internal/vars"
	"github.com/builder-dev/builder/llb"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/parser"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Image is the config of an image: OCI fields plus Docker's (healthcheck,
// shell, onbuild).
type Image = dockerspec.DockerOCIImage

// ResolvedImage is a base image pinned to a manifest digest, with its config.
type ResolvedImage struct {
	Digest digest.Digest
	Config Image
}

// ImageResolver resolves an image reference for a platform.
type ImageResolver interface {
	ResolveImage(ctx context.Context, ref string, platform ocispec.Platform) (ResolvedImage, error)
}

// Options is what a build of one Dockerfile needs besides the resolver.
type Options struct {
	Source   []byte
	Filename string // for messages, e.g. "Dockerfile"
	// ContextDir is the absolute path of the build context.
	ContextDir string
	// Excludes are the .dockerignore patterns of the context.
	Excludes  []string
	Target    string
	BuildArgs map[string]string
	// Contexts are named build contexts (--build-context name=...), usable
	// in FROM and COPY --from: a directory, or "docker-image://REF".
	Contexts map[string]string
	// TargetPlatform is the platform of the image built (TARGETPLATFORM,
	// and the platform of a stage without FROM --platform); BuildPlatform
	// the one the build runs on (BUILDPLATFORM), TargetPlatform when zero.
	TargetPlatform ocispec.Platform
	BuildPlatform  ocispec.Platform
	// NoCache makes every step run again.
	NoCache bool
	// NoCacheFilter names stages whose steps run again (--no-cache-filter).
	NoCacheFilter []string
	// Created is the time recorded in the config and new history entries
	// (SOURCE_DATE_EPOCH). Zero leaves them unset: the exporter takes them
	// from the records of the steps that made the layers.
	Created time.Time
	// Network is the network of a RUN without --network (or with
	// --network=default): "" (the default network), llb.NetworkNone or
	// llb.NetworkHost (the build's --network).
	Network string
	// ExtraHosts, ShmSize and Ulimits go to every RUN (the build's
	// --add-host, --shm-size and --ulimit).
	ExtraHosts []llb.HostIP
	ShmSize    int64
	Ulimits    []llb.Ulimit
}

// Result is the lowered target stage.
type Result struct {
	// Root produces the target's file tree; nil for an empty scratch stage.
	Root  *llb.Vertex
	Image Image
	// Warnings are things the user should know that do not stop the build.
	Warnings []string
}

// CheckBuildArg is the build arg that sets the build checks' options, with
// the syntax of the "# check=" directive, which it replaces (package
// checks reads it; a build does not report it as unused).
const CheckBuildArg = "BUILDKIT_DOCKERFILE_CHECK"

var defaultShell = []string{"/bin/sh", "-c"}

type converter struct {
	ctx      context.Context
	opt      Options
	resolver ImageResolver
	lex      *shell.Lex
	stages   []instructions.Stage
	globals  *vars.Scope
	lowered  map[int]*stageState
	lowering map[int]bool
	context  *llb.Vertex
	// consumed holds the build args some ARG declared.
	consumed map[string]bool
	// path holds the stages being lowered, outermost first.
	path []int
}

// stageState is a stage while its instructions are lowered.
type stageState struct {
	index  int
	name   string
	vertex *llb.Vertex
	image  Image
	// platform is the stage's: FROM --platform, else the target's.
	platform ocispec.Platform
	args     *vars.Scope
	// vars is what BuildKit calls the state's env: the image's ENV, then
	// every ENV and valued ARG in order, a later one replacing (and moving
	// to the end) an earlier one of the same name. RUN gets it, and
	// variable substitution reads it; the config's Env has ENVs only.
	vars   []string
	cmdSet bool
	step   int
	steps  int
}

// Build lowers opt.Source for opt.Target (the last stage when empty).
// Stages the target does not depend on are neither lowered nor resolved.
func Build(ctx context.Context, opt Options, resolver ImageResolver) (*Result, error) {
	if opt.Filename == "" {
		opt.Filename = "Dockerfile"
	}
	parsed, err := parser.Parse(bytes.NewReader(opt.Source))
	if err != nil {
		return nil, ParseError(opt.Filename, err)
	}
	stages, metaArgs, err := instructions.Parse(parsed.AST, nil)
	if err != nil {
		return nil, ParseError(opt.Filename, err)
	}
	if len(stages) == 0 {
		return nil, fmt.Errorf("%s: no FROM instruction: a Dockerfile must start with FROM (after ARGs and directives)", opt.Filename)
	}
	c := &converter{
		ctx: ctx, opt: opt, resolver: resolver,
		lex:      shell.NewLex(parsed.EscapeToken),
		stages:   stages,
		lowered:  map[int]*stageState{},
		lowering: map[int]bool{},
		consumed: map[string]bool{},
	}
	if err := c.checkCycles(); err != nil {
		return nil, err
	}
	c.globals = vars.NewScope(nil, opt.BuildArgs)
	if opt.BuildPlatform.Architecture == "" {
		c.opt.BuildPlatform = opt.TargetPlatform
	}
	for k, v := range PlatformArgs(c.opt.BuildPlatform, opt.TargetPlatform) {
		c.globals.Predefine(k, v)
	}
	for _, a := range metaArgs {
		if err := c.declareGlobals(&a); err != nil {
			return nil, &SourceError{Location: location(opt.Filename, a.Location()), Text: a.String(), Err: err}
		}
	}
	target := len(stages) - 1
	if opt.Target != "" {
		idx, ok := c.stageIndex(opt.Target, len(stages))
		if !ok {
			return nil, fmt.Errorf("%s: target stage %q could not be found%s; stages are: %s", opt.Filename, opt.Target, suggest.DidYouMean(opt.Target, c.stageNameList()), c.stageNames())
		}
		target = idx
	}
	st, err := c.lowerStage(target)
	if err != nil {
		return nil, err
	}
	img := st.image
	img.Created = c.created()
	res := &Result{Root: st.vertex, Image: img}
	if name, _, _, ok := parser.DetectSyntax(opt.Source); ok && !isOfficialFrontend(name) {
		res.Warnings = append(res.Warnings, fmt.Sprintf("%s: ignoring \"# syntax=%s\": builder has its own Dockerfile frontend and does not run frontend images", opt.Filename, name))
	}
	if unused := c.unusedBuildArgs(); len(unused) > 0 {
		res.Warnings = append(res.Warnings, fmt.Sprintf("one or more build args were not consumed: %s", strings.Join(unused, ", ")))
	}
	return res, nil
}

// isOfficialFrontend reports whether a # syntax= image is Docker's own
// Dockerfile frontend, whose language builder implements.
func isOfficialFrontend(ref string) bool {
	ref = strings.TrimPrefix(ref, "docker.io/")
	return ref == "docker/dockerfile" || strings.HasPrefix(ref, "docker/dockerfile:") || strings.HasPrefix(ref, "docker/dockerfile@")
}

// unusedBuildArgs lists --build-arg names no ARG of the built stages (or
// the global scope) declared, except the predefined ones.
func (c *converter) unusedBuildArgs() []string {
	var out []string
	for _, name := range llb.SortedKeys(c.opt.BuildArgs) {
		// SOURCE_DATE_EPOCH is read by the builder itself (reproducible images).
		if vars.IsProxy(name) || c.globals.Predefined(name) != "" || c.consumed[name] || name == "SOURCE_DATE_EPOCH" || name == CheckBuildArg {
			continue
		}
		out = append(out, name)
	}
	return out
}

func (c *converter) stageNames() string {
	var names []string
	for i, s := range c.stages {
		if s.Name != "" {
			names = append(names, s.Name)
		} else {
			names = append(names, strconv.Itoa(i))
		}
	}
	return strings.Join(names, ", ")
}

// stageNameList returns the names of the stages, for suggestions.
func (c *converter) stageNameList() []string {
	var names []string
	for _, s := range c.stages {
		names = append(names, s.Name)
	}
	return names
}

// stageIndex finds a stage by name or number among the first n stages.
func (c *converter) stageIndex(name string, n int) (int, bool) {
	lower := strings.ToLower(name)
	// Of stages with the same name, the last wins, as in BuildKit.
	for i := n - 1; i >= 0; i-- {
		if c.stages[i].Name == lower {
			return i, true
		}
	}
	if i, err := strconv.Atoi(name); err == nil && i >= 0 && i < n {
		return i, true
	}
	return 0, false
}

func (c *converter) lowerStage(idx int) (*stageState, error) {
	if st, ok := c.lowered[idx]; ok {
		return st, nil
	}
	s := &c.stages[idx]
	loc := location(c.opt.Filename, s.Location)
	if c.lowering[idx] {
		cycle := []string{stageLabel(s, idx)}
		for i := len(c.path) - 1; i >= 0 && c.path[i] != idx; i-- {
			cycle = append([]string{stageLabel(&c.stages[c.path[i]], c.path[i])}, cycle...)
		}
		cycle = append([]string{stageLabel(s, idx)}, cycle...)
		return nil, &SourceError{Location: loc, Text: s.SourceCode, Err: fmt.Errorf("circular dependency detected on stage: %s (%s)", stageLabel(s, idx), strings.Join(cycle, " -> "))}
	}
	c.lowering[idx] = true
	c.path = append(c.path, idx)
	defer func() {
		delete(c.lowering, idx)
		c.path = c.path[:len(c.path)-1]
	}()

	st := &stageState{index: idx, name: s.Name, args: vars.NewScope(c.globals, c.opt.BuildArgs)}
	if st.name == "" {
		st.name = "stage-" + strconv.Itoa(idx)
	}
	st.steps = len(s.Commands) + 1
	st.step = 1
	base, err := c.expand(s.BaseName, c.globals.Env())
	if err != nil {
		return nil, &SourceError{Location: loc, Text: s.SourceCode, Err: err}
	}
	if base == "" {
		return nil, &SourceError{Location: loc, Text: s.SourceCode, Err: fmt.Errorf("base name (%s) should not be blank", s.BaseName)}
	}
	if st.platform, err = c.stagePlatform(s.Platform); err != nil {
		return nil, &SourceError{Location: loc, Text: s.SourceCode, Err: err}
	}
	if err := c.from(st, idx, base, s.Location); err != nil {
		var se *SourceError
		if errors.As(err, &se) {
			return nil, err
		}
		return nil, &SourceError{Location: loc, Text: s.SourceCode, Err: err}
	}
	if st.vars == nil {
		st.initVars(nil)
	}
	if err := c.runOnbuild(st, s.Location); err != nil {
		return nil, &SourceError{Location: loc, Text: s.SourceCode, Err: err}
	}
	for _, cmd := range s.Commands {
		st.step++
		if err := c.dispatch(st, cmd); err != nil {
			var se *SourceError
			if errors.As(err, &se) {
				return nil, err
			}
			return nil, &SourceError{Location: location(c.opt.Filename, cmd.Location()), Text: fmt.Sprint(cmd), Err: err}
		}
	}
	c.lowered[idx] = st
	return st, nil
}

// DefaultPath is the PATH of a stage whose image sets none (scratch), as
// BuildKit's.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

func emptyImage(p ocispec.Platform) Image {
	var img Image
	img.Platform = p
	img.RootFS.Type = "layers"
	return img
}

// image resolves ref and returns its source vertex and config, with a
// history entry for each layer when the image has none.
func (c *converter) image(ref string, p ocispec.Platform, meta llb.Meta) (*llb.Vertex, Image, error) {
	res, err := c.resolver.ResolveImage(c.ctx, ref, p)
	if err != nil {
		if hint := suggest.DidYouMean(ref, c.stageNameList()); hint != "" {
			return nil, Image{}, fmt.Errorf("%w%s", err, strings.Replace(hint, "mean ", "mean stage ", 1))
		}
		return nil, Image{}, err
	}
	img := cloneImage(res.Config)
	if len(img.History) == 0 {
		for range img.RootFS.DiffIDs {
			img.History = append(img.History, ocispec.History{CreatedBy: "(layer of " + ref + ")"})
		}
	}
	img.Platform = configPlatform(img.Platform, p)
	meta.Name += "@" + res.Digest.String()
	v := llb.NewVertex(llb.ImageOp{Ref: ref, Digest: res.Digest, Platform: platformString(p)}, nil, meta)
	return v, img, nil
}

func (c *converter) meta(st *stageState, text string, loc []parser.Range) llb.Meta {
	return llb.Meta{
		Name:        fmt.Sprintf("[%s %d/%d] %s", st.name, st.step, st.steps, text),
		Location:    location(c.opt.Filename, loc),
		IgnoreCache: c.opt.NoCache || slices.Contains(c.opt.NoCacheFilter, st.name),
		StepID:      fmt.Sprintf("%s:%s:%d", c.opt.Filename, st.name, st.step),
	}
}

func (c *converter) expand(word string, env []string) (string, error) {
	out, _, err := c.lex.ProcessWord(word, shell.EnvsFromSlice(env))
	return out, err
}

// env is what variable substitution sees in a stage.
func (st *stageState) env() []string { return st.vars }

// runEnv is the environment of a RUN.
func (st *stageState) runEnv() []string { return slices.Clone(st.vars) }

// setVar assigns a variable of the stage (ENV, or ARG with a value).
func (st *stageState) setVar(name, value string) {
	st.vars = slices.DeleteFunc(slices.Clone(st.vars), func(kv string) bool {
		n, _, _ := strings.Cut(kv, "=")
		return n == name
	})
	st.vars = append(st.vars, name+"="+value)
}

// initVars starts the stage's variables from its base's (a stage's; none
// for an image) and its image's ENV, as BuildKit does for every stage.
func (st *stageState) initVars(base []string) {
	st.vars = slices.Clone(base)
	for _, kv := range st.image.Config.Env {
		name, value, _ := strings.Cut(kv, "=")
		st.setVar(name, value)
	}
}

func platformString(p ocispec.Platform) string {
	s := p.OS + "/" + p.Architecture
	if p.Variant != "" {
		s += "/" + p.Variant
	}
	return s
}

// PlatformArgs are the build args BuildKit predefines for the build and
// the target platform (BUILDPLATFORM, TARGETOS, …).
func PlatformArgs(build, target ocispec.Platform) map[string]string {
	return map[string]string{
		"TARGETPLATFORM": platformString(target), "TARGETOS": target.OS, "TARGETARCH": target.Architecture, "TARGETVARIANT": target.Variant,
		"BUILDPLATFORM": platformString(build), "BUILDOS": build.OS, "BUILDARCH": build.Architecture, "BUILDVARIANT": build.Variant,
	}
}

// configPlatform is the platform an image config records for a stage of
// platform p on a base whose config says base: p, keeping the base's
// variant when p leaves it out (arm64 images say v8, which normalised
// platform names drop).
func configPlatform(base, p ocispec.Platform) ocispec.Platform {
	out := ocispec.Platform{OS: p.OS, Architecture: p.Architecture, Variant: p.Variant}
	if out.Variant == "" && base.Architecture == p.Architecture {
		out.Variant = base.Variant
	}
	return out
}

// addHistory records an instruction in the image history.
func (c *converter) addHistory(st *stageState, createdBy string, emptyLayer bool) {
	st.image.History = append(st.image.History, ocispec.History{
		Created:    c.created(),
		CreatedBy:  createdBy,
		Comment:    "builder.dockerfile.v0",
		EmptyLayer: emptyLayer,
	})
}

// created is the time of new history entries: nil unless the build
// sets one.
func (c *converter) created() *time.Time {
	if c.opt.Created.IsZero() {
		return nil
	}
	t := c.opt.Created
	return &t
}

// absPath resolves p against the stage's working directory, keeping a
// trailing slash, which means "a directory" to COPY.
func absPath(workdir, p string) string {
	slash := strings.HasSuffix(p, "/") || strings.HasSuffix(p, "/.")
	if !path.IsAbs(p) {
		if workdir == "" {
			workdir = "/"
		}
		p = path.Join(workdir, p)
	}
	p = path.Clean(p)
	if slash && p != "/" {
		p += "/"
	}
	return p
}

// stageLabel names a stage for messages: its name, or its number.
func stageLabel(s *instructions.Stage, idx int) string {
	if s.Name != "" {
		return s.Name
	}
	return strconv.Itoa(idx)
}
