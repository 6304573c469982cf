package dockerfile

import (
	"errors"
	"fmt"
	"strings"

	"github.com/builder-dev/builder/frontend/dockerfile/internal/configval"
	"github.com/builder-dev/builder/frontend/dockerfile/internal/vars"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/moby/buildkit/frontend/dockerfile/shell"
)

// dispatchConfig applies an instruction that sets only the image config
// and adds an empty-layer history entry. A type switch over every such
// instruction: one case each, the longer ones in functions below.
func (c *converter) dispatchConfig(st *stageState, cmd instructions.Command) error {
	cfg := &st.image.Config
	switch cmd := cmd.(type) {
	case *instructions.EnvCommand:
		c.dispatchEnv(st, cmd)
	case *instructions.ArgCommand:
		return c.dispatchArg(st, cmd)
	case *instructions.UserCommand:
		cfg.User = cmd.User
		c.addHistory(st, fmt.Sprintf("USER %v", cmd.User), true)
	case *instructions.CmdCommand:
		cfg.Cmd = c.commandLine(st, cmd.ShellDependantCmdLine)
		st.cmdSet = true
		c.addHistory(st, fmt.Sprintf("CMD %q", cfg.Cmd), true)
	case *instructions.EntrypointCommand:
		cfg.Entrypoint = c.commandLine(st, cmd.ShellDependantCmdLine)
		if !st.cmdSet {
			// An inherited CMD was meant for the old entrypoint.
			cfg.Cmd = nil
		}
		c.addHistory(st, fmt.Sprintf("ENTRYPOINT %q", cfg.Entrypoint), true)
	case *instructions.LabelCommand:
		if cfg.Labels == nil {
			cfg.Labels = map[string]string{}
		}
		var parts []string
		for _, kv := range cmd.Labels {
			cfg.Labels[kv.Key] = kv.Value
			parts = append(parts, kv.Key+"="+kv.Value)
		}
		c.addHistory(st, "LABEL "+strings.Join(parts, " "), true)
	case *instructions.ExposeCommand:
		return c.dispatchExpose(st, cmd)
	case *instructions.VolumeCommand:
		if cfg.Volumes == nil {
			cfg.Volumes = map[string]struct{}{}
		}
		for _, v := range cmd.Volumes {
			if v == "" {
				return errors.New("VOLUME specified can not be an empty string")
			}
			cfg.Volumes[v] = struct{}{}
		}
		c.addHistory(st, fmt.Sprintf("VOLUME %v", cmd.Volumes), true)
	case *instructions.StopSignalCommand:
		if !configval.ValidSignal(cmd.Signal) {
			return fmt.Errorf("invalid signal: %s", cmd.Signal)
		}
		cfg.StopSignal = cmd.Signal
		c.addHistory(st, "STOPSIGNAL "+cmd.Signal, true)
	case *instructions.ShellCommand:
		cfg.Shell = append([]string(nil), cmd.Shell...)
		c.addHistory(st, fmt.Sprintf("SHELL %v", cmd.Shell), true)
	case *instructions.MaintainerCommand:
		st.image.Author = cmd.Maintainer
		c.addHistory(st, "MAINTAINER "+cmd.Maintainer, true)
	case *instructions.HealthCheckCommand:
		cfg.Healthcheck = cmd.Health
		c.addHistory(st, fmt.Sprintf("HEALTHCHECK %+v", *cmd.Health), true)
	case *instructions.OnbuildCommand:
		// Recorded in the config only; BuildKit adds no history line.
		cfg.OnBuild = append(cfg.OnBuild, cmd.Expression)
	default:
		return fmt.Errorf("instruction %s is not supported yet", strings.ToUpper(cmd.Name()))
	}
	return nil
}

func (c *converter) dispatchEnv(st *stageState, cmd *instructions.EnvCommand) {
	var parts []string
	for _, kv := range cmd.Env {
		st.image.Config.Env = vars.Set(st.image.Config.Env, kv.Key+"="+kv.Value)
		st.setVar(kv.Key, kv.Value)
		parts = append(parts, kv.Key+"="+kv.Value)
	}
	c.addHistory(st, "ENV "+strings.Join(parts, " "), true)
}

func (c *converter) dispatchArg(st *stageState, cmd *instructions.ArgCommand) error {
	if err := c.declareArgs(st, cmd); err != nil {
		return err
	}
	var parts []string
	for _, kv := range cmd.Args {
		if v, ok := st.args.Lookup(kv.Key); ok {
			parts = append(parts, kv.Key+"="+v)
		} else {
			parts = append(parts, kv.Key)
		}
	}
	c.addHistory(st, "ARG "+strings.Join(parts, " "), true)
	return nil
}

// dispatchExpose records EXPOSE's ports, each word expanded to one entry
// per port ("8000-8002/udp" is three).
func (c *converter) dispatchExpose(st *stageState, cmd *instructions.ExposeCommand) error {
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
			expanded, err := configval.ExposedPorts(w)
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
	return nil
}
