package executor

// Each sandbox runs in a cgroup of its own beneath builder's (package
// cgroup), joined by the parent before the init reads its spec, so nothing
// of the user's runs outside it: Spec.Resources limits it, Spec.Usage
// receives what it used, and it is killed as a whole on cancel.

import (
	"errors"
	"os"
	"os/exec"
	"time"

	"github.com/builder-dev/builder/executor/cgroup"
)

// joinCgroup moves the just-started init into cg (nil: no cgroup). On
// failure the init is killed and reaped and cg removed: a sandbox never
// runs outside the limits it was asked to have.
func joinCgroup(cg *cgroup.Group, cmd *exec.Cmd) error {
	if cg == nil {
		return nil
	}
	err := cg.Add(cmd.Process.Pid)
	if err == nil {
		return nil
	}
	cmd.Process.Kill()
	cmd.Wait()
	return errors.Join(err, cg.Delete())
}

// killSandbox is the init's exec.Cmd.Cancel: it kills the whole cgroup,
// then the init (whose death ends its pid namespace) in case there is no
// cgroup or the cgroup kill failed.
func killSandbox(cg *cgroup.Group, p *os.Process) error {
	if cg != nil {
		cg.Kill()
	}
	return p.Kill()
}

// finishCgroup, after the init was reaped, reads the sandbox's usage into
// spec.Usage, reports a process the kernel killed for want of memory as an
// *OOMError, and removes the cgroup.
func finishCgroup(cg *cgroup.Group, spec Spec, result error) error {
	if cg == nil {
		return result
	}
	if r, ok := spec.Stdout.(CPUReporter); ok {
		// The reader of cg reads 0 once it is deleted, while the
		// caller's work after Run (sealing the layer) runs in its own
		// process: from now on the step counts as one CPU.
		end := time.Now()
		r.ReportCPU(func() time.Duration { return time.Since(end) })
	}
	if spec.Usage != nil {
		*spec.Usage = cg.Usage()
	}
	if ee, ok := result.(*ExitError); ok && cg.OOMKilled() {
		result = &OOMError{Limit: cg.MemoryLimit(), Exit: ee}
	}
	return errors.Join(result, cg.Delete())
}
