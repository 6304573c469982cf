package dockerfile

import (
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
	inputs := map[digest.Digest]int{}
	addInput := func(from string) (int, error) {
		v, err := c.copySource(st, cmd, copySpec{name: "RUN --mount", from: from})
		if err != nil {
			return 0, err
		}
		if i, ok := inputs[v.Digest()]; ok {
			return i, nil
		}
		rf.inputs = append(rf.inputs, v)
		inputs[v.Digest()] = len(rf.inputs)
		return len(rf.inputs), nil
	}
	ssh := 0
	for _, m := range instructions.GetMounts(cmd) {
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
				return rf, fmt.Errorf("RUN %s: a target is required", desc)
			}
			if em.Target == "/" {
				return rf, fmt.Errorf("RUN %s: the target cannot be /", desc)
			}
		}
		switch m.Type {
		case instructions.MountTypeBind:
			i, err := addInput(m.From)
			if err != nil {
				return rf, err
			}
			em.Input = i
		case instructions.MountTypeCache:
			em.ID = m.CacheID
			if em.ID == "" {
				em.ID = em.Target
			}
			em.Sharing = string(m.CacheSharing)
			if m.From != "" {
				i, err := addInput(m.From)
				if err != nil {
					return rf, err
				}
				em.Input = i
			}
		case instructions.MountTypeTmpfs:
		case instructions.MountTypeSecret:
			em.Source = ""
			em.ID = m.CacheID
			if em.ID == "" {
				em.ID = m.Source
			}
			if em.ID == "" {
				em.ID = path.Base(em.Target)
			}
			if m.Env != nil {
				em.Env = *m.Env
			}
			if em.Target == "" && em.Env == "" {
				em.Target = "/run/secrets/" + em.ID
			}
		case instructions.MountTypeSSH:
			em.Source = ""
			em.ID = m.CacheID
			if em.ID == "" {
				em.ID = "default"
			}
			if em.Target == "" {
				em.Target = "/run/buildkit/ssh_agent." + strconv.Itoa(ssh)
			}
			if ssh == 0 {
				rf.env = append(rf.env, "SSH_AUTH_SOCK="+em.Target)
			}
			ssh++
		default:
			return rf, fmt.Errorf("RUN %s is not supported", desc)
		}
		rf.mounts = append(rf.mounts, em)
	}
	return rf, nil
}

func uint32Ptr(p *uint64) *uint32 {
	if p == nil {
		return nil
	}
	v := uint32(*p)
	return &v
}
