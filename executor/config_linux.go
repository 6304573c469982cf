package executor

import (
	"fmt"

	"github.com/builder-dev/builder/executor/mountpoints"
	"github.com/builder-dev/builder/executor/sandboxinit"
	"github.com/builder-dev/builder/executor/seccompprog"
)

// A setting the init applies (inside the sandbox: mounts, limits, what it
// execs) is a field of Spec, the same field in sandboxinit.Config, and a
// line below; one the parent applies (files it writes, the cgroup, the
// network helper) stays in Spec.

// newInitConfig is what the parent sends the init: the Spec's part that
// the init applies, the network plan's, and the seccomp program. It fails
// closed: a sandbox that is not insecure gets the profile or does not
// start.
func newInitConfig(spec Spec, nw netPlan) (sandboxinit.Config, error) {
	cfg := sandboxinit.Config{
		Rootfs:    mountpoints.Add(spec.Rootfs),
		Args:      spec.Args,
		Env:       spec.Env,
		Cwd:       spec.Cwd,
		User:      spec.User,
		Hostname:  spec.Hostname,
		Mounts:    spec.Mounts,
		RunMounts: withSecretSizes(spec.RunMounts),
		Insecure:  spec.Insecure,
		StateDir:  spec.StateDir,
		Net:       nw.init,
		ShmSize:   spec.ShmSize,
		Ulimits:   spec.Ulimits,
	}
	if spec.Insecure {
		return cfg, nil
	}
	prog, err := seccompprog.For(spec.ElideSync)
	if err != nil {
		return cfg, fmt.Errorf("executor: seccomp: %w", err)
	}
	cfg.Seccomp, cfg.SeccompSize = prog, len(prog)
	return cfg, nil
}
