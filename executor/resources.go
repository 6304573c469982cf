package executor

import (
	"fmt"

	"github.com/docker/go-units"
)

// OOMError reports a process killed by the kernel for want of memory,
// usually because its sandbox reached its memory limit (--memory), rather than a bare exit 137.
type OOMError struct {
	// Limit is the sandbox's memory limit in bytes, 0 when the OOM killer
	// acted on a limit above it (the host's, a parent cgroup's).
	Limit int64
	// Exit is how the process ended.
	Exit *ExitError
}

func (e *OOMError) Error() string {
	if e.Limit <= 0 {
		// Killed by the OOM killer of the host or a parent cgroup.
		return "killed: out of memory"
	}
	return fmt.Sprintf("killed: out of memory (limit %s)", units.BytesSize(float64(e.Limit)))
}

// Unwrap lets errors.As find the *ExitError.
func (e *OOMError) Unwrap() error { return e.Exit }
