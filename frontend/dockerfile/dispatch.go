package dockerfile

import (
	"errors"
	"fmt"

	"strconv"
	"strings"

	"github.com/builder-dev/builder/llb"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// dispatch applies one instruction to a stage.
func (c *converter) dispatch(st *stageState, cmd instructions.Command) error {
	env := st.env()
	getter := shell.EnvsFromSlice(env)
	expander := func(word string) (string, error) {
		out, _, err := c.lex.ProcessWord(word, getter)
		return out, err
	}
	if e, ok := cmd.(instructions.SupportsSingleWordExpansion); ok {
		// ARG expands its default itself (once: a build arg given for it
		// is not expanded), as BuildKit does.
		_, isArg := cmd.(*instructions.ArgCommand)
		if _, isRun := cmd.(*instructions.RunCommand); !isRun && !isArg {
			if err := e.Expand(expander); err != nil {
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
	text := fmt.Sprint(cmd)
	switch cmd := cmd.(type) {
	case *instructions.EnvCommand:
		var parts []string
		for _, kv := range cmd.Env {
			st.image.Config.Env = setEnv(st.image.Config.Env, kv.Key+"="+kv.Value)
			st.setVar(kv.Key, kv.Value)
			parts = append(parts, kv.Key+"="+kv.Value)
		}
		c.addHistory(st, "ENV "+strings.Join(parts, " "), true)
	case *instructions.ArgCommand:
		if err := c.declareArgs(st, cmd); err != nil {
			return err
		}
		var parts []string
		for _, kv := range cmd.Args {
			if v, ok := st.args.lookup(kv.Key); ok {
				parts = append(parts, kv.Key+"="+v)
			} else {
				parts = append(parts, kv.Key)
			}
		}
		c.addHistory(st, "ARG "+strings.Join(parts, " "), true)
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
		wd := absPath(st.image.Config.WorkingDir, cmd.Path)
		wd = strings.TrimSuffix(wd, "/")
		if wd == "" {
			wd = "/"
		}
		st.image.Config.WorkingDir = wd
		if wd == "/" {
			// Nothing to make: no step and no layer, as in BuildKit.
			c.addHistory(st, "WORKDIR "+wd, true)
			break
		}
		st.vertex = llb.NewVertex(llb.MkdirOp{Path: wd, Mode: 0o755, Chown: st.image.Config.User},
			[]*llb.Vertex{st.vertex}, c.meta(st, text, cmd.Location()))
		c.addHistory(st, "WORKDIR "+wd, false)
	case *instructions.UserCommand:
		st.image.Config.User = cmd.User
		c.addHistory(st, fmt.Sprintf("USER %v", cmd.User), true)
	case *instructions.CmdCommand:
		st.image.Config.Cmd = c.commandLine(st, cmd.ShellDependantCmdLine)
		st.cmdSet = true
		c.addHistory(st, fmt.Sprintf("CMD %q", st.image.Config.Cmd), true)
	case *instructions.EntrypointCommand:
		st.image.Config.Entrypoint = c.commandLine(st, cmd.ShellDependantCmdLine)
		if !st.cmdSet {
			// An inherited CMD was meant for the old entrypoint.
			st.image.Config.Cmd = nil
		}
		c.addHistory(st, fmt.Sprintf("ENTRYPOINT %q", st.image.Config.Entrypoint), true)
	case *instructions.LabelCommand:
		if st.image.Config.Labels == nil {
			st.image.Config.Labels = map[string]string{}
		}
		var parts []string
		for _, kv := range cmd.Labels {
			st.image.Config.Labels[kv.Key] = kv.Value
			parts = append(parts, kv.Key+"="+kv.Value)
		}
		c.addHistory(st, "LABEL "+strings.Join(parts, " "), true)
	case *instructions.ExposeCommand:
		if st.image.Config.ExposedPorts == nil {
			st.image.Config.ExposedPorts = map[string]struct{}{}
		}
		var ports []string
		for _, p := range cmd.Ports {
			words, err := c.lex.ProcessWords(p, shell.EnvsFromSlice(st.env()))
			if err != nil {
				return err
			}
			for _, w := range words {
				expanded, err := exposedPorts(w)
				if err != nil {
					return err
				}
				for _, port := range expanded {
					st.image.Config.ExposedPorts[port] = struct{}{}
				}
				ports = append(ports, expanded...)
			}
		}
		c.addHistory(st, fmt.Sprintf("EXPOSE %v", ports), true)
	case *instructions.VolumeCommand:
		if st.image.Config.Volumes == nil {
			st.image.Config.Volumes = map[string]struct{}{}
		}
		for _, v := range cmd.Volumes {
			if v == "" {
				return errors.New("VOLUME specified can not be an empty string")
			}
			st.image.Config.Volumes[v] = struct{}{}
		}
		c.addHistory(st, fmt.Sprintf("VOLUME %v", cmd.Volumes), true)
	case *instructions.StopSignalCommand:
		if !validSignal(cmd.Signal) {
			return fmt.Errorf("invalid signal: %s", cmd.Signal)
		}
		st.image.Config.StopSignal = cmd.Signal
		c.addHistory(st, "STOPSIGNAL "+cmd.Signal, true)
	case *instructions.ShellCommand:
		st.image.Config.Shell = append([]string(nil), cmd.Shell...)
		c.addHistory(st, fmt.Sprintf("SHELL %v", cmd.Shell), true)
	case *instructions.MaintainerCommand:
		st.image.Author = cmd.Maintainer
		c.addHistory(st, "MAINTAINER "+cmd.Maintainer, true)
	case *instructions.HealthCheckCommand:
		st.image.Config.Healthcheck = cmd.Health
		c.addHistory(st, fmt.Sprintf("HEALTHCHECK %+v", *cmd.Health), true)
	case *instructions.OnbuildCommand:
		// Recorded in the config only; BuildKit adds no history line.
		st.image.Config.OnBuild = append(st.image.Config.OnBuild, cmd.Expression)
	default:
		return fmt.Errorf("instruction %s is not supported yet", strings.ToUpper(cmd.Name()))
	}
	return nil
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
		if cl, files, err = heredocCommand(cl, cmd.Files); err != nil {
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
	proxy := proxyEnv(env, c.opt.BuildArgs)
	for _, kv := range rf.env {
		env = setEnv(env, kv)
	}
	op := llb.ExecOp{Args: args, Env: env, Cwd: cwd, User: st.image.Config.User, Files: files, ProxyEnv: proxy,
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
	v, _, err := c.image(cs.from, c.meta(st, "FROM "+cs.from, cmd.Location()))
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

// exposedPorts turns "80" into ["80/tcp"] and a range "8000-8002/udp"
// into one entry per port, as Docker records them.
func exposedPorts(p string) ([]string, error) {
	port, proto, ok := strings.Cut(p, "/")
	if !ok {
		proto = "tcp"
	}
	proto = strings.ToLower(proto)
	if proto != "tcp" && proto != "udp" && proto != "sctp" {
		return nil, fmt.Errorf("EXPOSE %s: protocol must be tcp, udp or sctp", p)
	}
	loText, hiText, isRange := strings.Cut(port, "-")
	if !isRange {
		hiText = loText
	}
	lo, err1 := strconv.Atoi(loText)
	hi, err2 := strconv.Atoi(hiText)
	if err1 != nil || err2 != nil || lo < 0 || hi > 65535 || lo > hi {
		return nil, fmt.Errorf("EXPOSE %s: invalid port or range %q", p, port)
	}
	var out []string
	for n := lo; n <= hi; n++ {
		out = append(out, strconv.Itoa(n)+"/"+proto)
	}
	return out, nil
}

// historySuffix ends the history lines of steps that make layers, as
// BuildKit writes them; tools that read history look for it.
const historySuffix = " # buildkit"

// runHistory is a RUN's history text: the stage's build args, as
// "|N K=V ...", then the command.
func runHistory(args []string, st *stageState) string {
	env := st.runEnv()
	var parts []string
	for _, name := range st.args.order {
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
