package seccompprog

import (
	"fmt"
	"os"
	"sync"

	"github.com/builder-dev/builder/executor/sandboxinit"
	"github.com/builder-dev/builder/internal/seccomp"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// capNames names sandboxinit.DefaultCaps as seccomp profiles do.
var capNames = map[uintptr]string{
	unix.CAP_CHOWN:            "CAP_CHOWN",
	unix.CAP_DAC_OVERRIDE:     "CAP_DAC_OVERRIDE",
	unix.CAP_FSETID:           "CAP_FSETID",
	unix.CAP_FOWNER:           "CAP_FOWNER",
	unix.CAP_MKNOD:            "CAP_MKNOD",
	unix.CAP_NET_RAW:          "CAP_NET_RAW",
	unix.CAP_SETGID:           "CAP_SETGID",
	unix.CAP_SETUID:           "CAP_SETUID",
	unix.CAP_SETFCAP:          "CAP_SETFCAP",
	unix.CAP_SETPCAP:          "CAP_SETPCAP",
	unix.CAP_NET_BIND_SERVICE: "CAP_NET_BIND_SERVICE",
	unix.CAP_SYS_CHROOT:       "CAP_SYS_CHROOT",
	unix.CAP_KILL:             "CAP_KILL",
	unix.CAP_AUDIT_WRITE:      "CAP_AUDIT_WRITE",
}

// StepFsyncEnv set to "run" makes For run the sync calls even when asked
// to elide them: a switch for measuring the elision
// (bench/peers/fsync-elision.sh), not a durability setting.
const StepFsyncEnv = "BUILDER_STEP_FSYNC"

// For returns the encoded program. With elideSync (a build step's
// sandbox, see executor.Spec.ElideSync), fsync, fdatasync,
// sync_file_range and syncfs succeed without running
// (seccomp.ElideSync), unless $BUILDER_STEP_FSYNC=run.
func For(elideSync bool) ([]byte, error) {
	if elideSync && os.Getenv(StepFsyncEnv) != "run" {
		return eliding()
	}
	return plain()
}

var (
	plain   = sync.OnceValues(func() ([]byte, error) { return compile(seccomp.Default) })
	eliding = sync.OnceValues(func() ([]byte, error) { return compile(seccomp.DefaultElidingSync) })
)

func compile(c func(caps []string) ([]bpf.RawInstruction, error)) ([]byte, error) {
	caps := make([]string, 0, len(sandboxinit.DefaultCaps))
	for _, bit := range sandboxinit.DefaultCaps {
		name, ok := capNames[bit]
		if !ok {
			return nil, fmt.Errorf("capability %d has no name for the seccomp profile", bit)
		}
		caps = append(caps, name)
	}
	prog, err := c(caps)
	if err != nil {
		return nil, err
	}
	return seccomp.Encode(prog), nil
}
