//go:build !linux

package testutil

import "os/exec"

// setPdeathsig does nothing here: only Linux can tie a child's life to its
// parent, so a crashed test binary may leave a helper process running.
func setPdeathsig(*exec.Cmd) {}
