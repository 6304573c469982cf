package dockerfile

import (
	"cmp"
	"fmt"
	"path"
	"strconv"
	"strings"

	"github.com/builder-dev/builder/llb"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/opencontainers/go-digest"
)

// runFlags is what RUN --mount, --network and --security add to an ExecOp.
type runFlags struct {
	mounts []llb.ExecMount
	// inputs are the file trees mounts read, the op's inputs after its
	// rootfs (ExecMount.Input counts from 1).
	inputs   []*llb.Vertex
	env      []string // SSH_AUTH_SOCK for the first SSH mount
	network  string
	security string
}

// runFlags lowers a RUN's flags, with BuildKit's defaults: a relative
// target is below the working directory, a bind mount reads the build
// context, a cache is named by its target, a secret goes to
// /run/secrets/ID and the SSH agents to /run/buildkit/ssh_agent.N.
func (c *converter) runFlags(st *stageState, cmd *instructions.RunCommand) (runFlags, error) {
	var rf runFlags
	for _, f := range cmd.FlagsUsed {
		switch f {
		case "mount", "network", "security":
		default:
			return rf, fmt.Errorf("RUN --%s is not supported yet", f)
		}
	}
	env := st.env()
	if err := cmd.Expand(func(word string) (string, error) { return c.expand(word, env) }); err != nil {
		return rf, err
	}
	switch n := instructions.GetNetwork(cmd); n {
	case instructions.NetworkDefault:
		rf.network = c.opt.Network
	case instructions.NetworkNone:
		rf.network = llb.NetworkNone
	case instructions.NetworkHost:
		rf.network = llb.NetworkHost
	default:
		return rf, fmt.Errorf("RUN --network=%s: want default, none or host", n)
	}
	if instructions.GetSecurity(cmd) == instructions.SecurityInsecure {
		rf.security = llb.SecurityInsecure
	}
	in := runInputs{c: c, st: st, cmd: cmd, index: map[digest.Digest]int{}}
	ssh := 0
	for _, m := range instructions.GetMounts(cmd) {
		em, err := runMount(st, m, &in)
		if err != nil {
			return rf, err
		}
		if m.Type == instructions.MountTypeSSH {
			if em.Target == "" {
				em.Target = "/run/buildkit/ssh_agent." + strconv.Itoa(ssh)
			}
			if ssh == 0 {
				rf.env = append(rf.env, "SSH_AUTH_SOCK="+em.Target)
			}
			ssh++
		}
		rf.mounts = append(rf.mounts, em)
	}
	rf.inputs = in.vertices
	return rf, nil
}

// runInputs collects the file trees RUN's mounts read, each once.
type runInputs struct {
	c        *converter
	st       *stageState
	cmd      *instructions.RunCommand
	vertices []*llb.Vertex
	index    map[digest.Digest]int
}

// add returns the input number (from 1) of the tree from names: the
// context, a stage or an image.
func (in *runInputs) add(from string) (int, error) {
	v, err := in.c.copySource(in.st, in.cmd, copySpec{name: "RUN --mount", from: from})
	if err != nil {
		return 0, err
	}
	if i, ok := in.index[v.Digest()]; ok {
		return i, nil
	}
	in.vertices = append(in.vertices, v)
	in.index[v.Digest()] = len(in.vertices)
	return len(in.vertices), nil
}

// runMount lowers one --mount; an SSH mount's default target depends on
// its position and is set by the caller.
func runMount(st *stageState, m *instructions.Mount, in *runInputs) (llb.ExecMount, error) {
	em := llb.ExecMount{Type: string(m.Type), Source: m.Source, Readonly: m.ReadOnly, Required: m.Required, Size: m.SizeLimit}
	if m.Target != "" {
		em.Target = absPath(st.image.Config.WorkingDir, m.Target)
		if em.Target != "/" {
			em.Target = strings.TrimSuffix(em.Target, "/")
		}
	}
	em.Mode, em.UID, em.GID = uint32Ptr(m.Mode), uint32Ptr(m.UID), uint32Ptr(m.GID)
	desc := "--mount=type=" + string(m.Type)
	switch m.Type {
	case instructions.MountTypeBind, instructions.MountTypeCache, instructions.MountTypeTmpfs:
		if em.Target == "" {
			return em, fmt.Errorf("RUN %s: a target is required", desc)
		}
		if em.Target == "/" {
			return em, fmt.Errorf("RUN %s: the target cannot be /", desc)
		}
	}
	var err error
	switch m.Type {
	case instructions.MountTypeBind:
		em.Input, err = in.add(m.From)
	case instructions.MountTypeCache:
		em.ID = cmp.Or(m.CacheID, em.Target)
		em.Sharing = string(m.CacheSharing)
		if m.From != "" {
			em.Input, err = in.add(m.From)
		}
	case instructions.MountTypeTmpfs:
	case instructions.MountTypeSecret:
		em.Source = ""
		em.ID = cmp.Or(m.CacheID, m.Source, path.Base(em.Target))
		if m.Env != nil {
			em.Env = *m.Env
		}
		if em.Target == "" && em.Env == "" {
			em.Target = "/run/secrets/" + em.ID
		}
	case instructions.MountTypeSSH:
		em.Source = ""
		em.ID = cmp.Or(m.CacheID, "default")
	default:
		return em, fmt.Errorf("RUN %s is not supported", desc)
	}
	return em, err
}

func uint32Ptr(p *uint64) *uint32 {
	if p == nil {
		return nil
	}
	v := uint32(*p)
	return &v
}
