package testutil

import (
	"os/exec"
	"syscall"
)

// setPdeathsig makes the kernel kill a helper process if the test binary
// dies without running its cleanups (a panic or -timeout).
func setPdeathsig(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
