package dockerfile

import (
	"errors"
	"fmt"

	"strings"

	"github.com/builder-dev/builder/frontend/dockerfile/internal/heredoc"
	"github.com/builder-dev/builder/frontend/dockerfile/internal/vars"
	"github.com/builder-dev/builder/llb"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// dispatch applies one instruction to a stage: the instructions that
// change files here, those that set only the config in dispatchConfig.
func (c *converter) dispatch(st *stageState, cmd instructions.Command) error {
	if err := c.expandCommand(st, cmd); err != nil {
		return err
	}
	switch cmd := cmd.(type) {
	case *instructions.RunCommand:
		return c.dispatchRun(st, cmd)
	case *instructions.CopyCommand:
		return c.dispatchCopy(st, cmd, copySpec{
			SourcesAndDest: cmd.SourcesAndDest, name: "COPY", from: cmd.From, chown: cmd.Chown, chmod: cmd.Chmod,
			link: cmd.Link, parents: cmd.Parents, excludes: cmd.ExcludePatterns,
		})
	case *instructions.AddCommand:
		return c.dispatchAdd(st, cmd)
	case *instructions.WorkdirCommand:
		c.dispatchWorkdir(st, cmd)
		return nil
	default:
		return c.dispatchConfig(st, cmd)
	}
}

// expandCommand substitutes the stage's variables in an instruction's
// words (RUN and ARG do it themselves).
func (c *converter) expandCommand(st *stageState, cmd instructions.Command) error {
	getter := shell.EnvsFromSlice(st.env())
	if e, ok := cmd.(instructions.SupportsSingleWordExpansion); ok {
		// ARG expands its default itself (once: a build arg given for it
		// is not expanded), as BuildKit does.
		_, isArg := cmd.(*instructions.ArgCommand)
		if _, isRun := cmd.(*instructions.RunCommand); !isRun && !isArg {
			if err := e.Expand(func(word string) (string, error) {
				out, _, err := c.lex.ProcessWord(word, getter)
				return out, err
			}); err != nil {
				return err
			}
		}
	}
	if e, ok := cmd.(instructions.SupportsSingleWordExpansionRaw); ok {
		// Heredoc contents of COPY <<EOF, unless quoted ('EOF').
		// Quotes in a document are its text, not shell quoting.
		raw := shell.NewLex('\\')
		raw.SkipProcessQuotes = true
		if err := e.ExpandRaw(func(word string) (string, error) {
			out, _, err := raw.ProcessWord(word, getter)
			return out, err
		}); err != nil {
			return err
		}
	}
	return nil
}

// dispatchWorkdir sets the working directory and makes it.
func (c *converter) dispatchWorkdir(st *stageState, cmd *instructions.WorkdirCommand) {
	wd := absPath(st.image.Config.WorkingDir, cmd.Path)
	wd = strings.TrimSuffix(wd, "/")
	if wd == "" {
		wd = "/"
	}
	st.image.Config.WorkingDir = wd
	if wd == "/" {
		// Nothing to make: no step and no layer, as in BuildKit.
		c.addHistory(st, "WORKDIR "+wd, true)
		return
	}
	st.vertex = llb.NewVertex(llb.MkdirOp{Path: wd, Mode: 0o755, Chown: st.image.Config.User},
		[]*llb.Vertex{st.vertex}, c.meta(st, fmt.Sprint(cmd), cmd.Location()))
	c.addHistory(st, "WORKDIR "+wd, false)
}

func (c *converter) shell(st *stageState) []string {
	if len(st.image.Config.Shell) > 0 {
		return st.image.Config.Shell
	}
	return defaultShell
}

// commandLine turns a shell- or exec-form command line into argv.
func (c *converter) commandLine(st *stageState, cl instructions.ShellDependantCmdLine) []string {
	if cl.PrependShell {
		return append(append([]string(nil), c.shell(st)...), strings.Join(cl.CmdLine, " "))
	}
	return append([]string(nil), cl.CmdLine...)
}

func (c *converter) dispatchRun(st *stageState, cmd *instructions.RunCommand) error {
	rf, err := c.runFlags(st, cmd)
	if err != nil {
		return err
	}
	cl := cmd.ShellDependantCmdLine
	var files []llb.InlineFile
	if len(cmd.Files) > 0 {
		var err error
		if cl, files, err = heredoc.Command(cl, cmd.Files); err != nil {
			return err
		}
	}
	args := c.commandLine(st, cl)
	if len(args) == 0 {
		return errors.New("RUN needs a command")
	}
	for _, a := range args {
		// exec(2) takes NUL-terminated strings: it would fail with EINVAL.
		if strings.ContainsRune(a, 0) {
			return errors.New("the command contains a NUL byte, which no program can be given (is the Dockerfile a text file?)")
		}
	}
	cwd := st.image.Config.WorkingDir
	if cwd == "" {
		cwd = "/"
	}
	env := st.runEnv()
	proxy := vars.ProxyEnv(env, c.opt.BuildArgs)
	for _, kv := range rf.env {
		env = vars.Set(env, kv)
	}
	op := llb.ExecOp{Platform: platformString(st.platform), Args: args, Env: env, Cwd: cwd, User: st.image.Config.User, Files: files, ProxyEnv: proxy,
		Network: rf.network, Mounts: rf.mounts, Security: rf.security,
		ExtraHosts: c.opt.ExtraHosts, ShmSize: c.opt.ShmSize, Ulimits: c.opt.Ulimits}
	inputs := append([]*llb.Vertex{st.vertex}, rf.inputs...)
	st.vertex = llb.NewVertex(op, inputs, c.meta(st, fmt.Sprint(cmd), cmd.Location()))
	c.addHistory(st, "RUN "+runHistory(args, st)+historySuffix, false)
	return nil
}

// copySpec is what COPY and ADD share.
type copySpec struct {
	instructions.SourcesAndDest
	name     string // COPY or ADD
	from     string
	chown    string
	chmod    string
	add      bool
	link     bool
	parents  bool
	excludes []string
}

func (c *converter) dispatchCopy(st *stageState, cmd instructions.Command, cs copySpec) error {
	if cs.chmod != "" {
		if _, err := llb.ParseChmod(cs.chmod); err != nil {
			return fmt.Errorf("%s --chmod: %w", cs.name, err)
		}
	}
	inputs := []*llb.Vertex{st.vertex}
	if len(cs.SourcePaths) > 0 {
		src, err := c.copySource(st, cmd, cs)
		if err != nil {
			return err
		}
		inputs = append(inputs, src)
	}
	dest := absPath(st.image.Config.WorkingDir, cs.DestPath)
	op := llb.CopyOp{
		Sources: cs.SourcePaths, Dest: dest, Chown: cs.chown, Chmod: cs.chmod, Add: cs.add,
		Excludes: cs.excludes, Parents: cs.parents, Link: cs.link,
	}
	for _, f := range cs.SourceContents {
		op.Inline = append(op.Inline, llb.InlineFile{Path: f.Path, Data: f.Data, Mode: 0o644})
	}
	st.vertex = llb.NewVertex(op, inputs, c.meta(st, fmt.Sprint(cmd), cmd.Location()))
	c.addHistory(st, copyHistory(cs), false)
	return nil
}

// copySource returns the vertex COPY selects its sources from: the build
// context, an earlier stage, or an image.
func (c *converter) copySource(st *stageState, cmd instructions.Command, cs copySpec) (*llb.Vertex, error) {
	if cs.from == "" {
		return c.contextVertex(), nil
	}
	if v, _, ok, err := c.namedContext(st, cs.from, cmd.Location(), true); ok || err != nil {
		return v, err
	}
	// As in BuildKit, a stage may copy only from an earlier stage.
	if idx, ok := c.stageIndex(cs.from, len(c.stages)); ok {
		switch {
		case idx == st.index:
			return nil, fmt.Errorf("circular dependency detected on stage: %s", st.name)
		case idx > st.index:
			return nil, fmt.Errorf("cannot copy from stage %q, it needs to be defined before current stage %q", cs.from, st.name)
		}
		s, err := c.lowerStage(idx)
		if err != nil {
			return nil, err
		}
		if s.vertex == nil {
			return nil, fmt.Errorf("%s --from=%s: that stage is an empty scratch image", cs.name, cs.from)
		}
		return s.vertex, nil
	}
	v, _, err := c.image(cs.from, st.platform, c.meta(st, "FROM "+cs.from, cmd.Location()))
	if err != nil {
		return nil, fmt.Errorf("%s --from=%s: %w", cs.name, cs.from, err)
	}
	return v, nil
}

func (c *converter) contextVertex() *llb.Vertex {
	if c.context == nil {
		c.context = llb.NewVertex(llb.LocalOp{Name: "context", Dir: c.opt.ContextDir, Excludes: c.opt.Excludes}, nil,
			llb.Meta{Name: "[internal] load build context"})
	}
	return c.context
}

// historySuffix ends the history lines of steps that make layers, as
// BuildKit writes them; tools that read history look for it.
const historySuffix = " # buildkit"

// runHistory is a RUN's history text: the stage's build args, as
// "|N K=V ...", then the command.
func runHistory(args []string, st *stageState) string {
	env := st.runEnv()
	var parts []string
	for _, name := range st.args.Declared() {
		v := ""
		for _, kv := range env {
			if k, val, _ := strings.Cut(kv, "="); k == name {
				v = val
			}
		}
		parts = append(parts, name+"="+v)
	}
	if len(parts) > 0 {
		parts = append([]string{fmt.Sprintf("|%d", len(parts))}, parts...)
	}
	return strings.Join(append(parts, args...), " ")
}

// copyHistory is a COPY or ADD's history text: flags, sources and the
// destination as written.
func copyHistory(cs copySpec) string {
	parts := []string{cs.name}
	if cs.parents {
		parts = append(parts, "--parents")
	}
	if cs.chown != "" {
		parts = append(parts, "--chown="+cs.chown)
	}
	if cs.chmod != "" {
		parts = append(parts, "--chmod="+cs.chmod)
	}
	parts = append(parts, cs.SourcePaths...)
	for _, f := range cs.SourceContents {
		parts = append(parts, "<<"+f.Path)
	}
	return strings.Join(append(parts, cs.DestPath), " ") + historySuffix
}
