package executor

import (
	"fmt"
	"os"
	"sync"

	"github.com/builder-dev/builder/executor/sandboxinit"
	"github.com/builder-dev/builder/internal/seccomp"
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

// defaultSeccomp is Docker's default seccomp profile for Docker's default
// capabilities (every sandbox's bounding set), compiled once per process
// and handed to each init, which then needs no compiler. With
// $BUILDER_STEP_FSYNC=elide, fsync and the other sync calls succeed
// without running (seccomp.ElideSync) and Commit's syncfs alone makes the
// layer durable: a speed lever not yet on by default, because it has not
// yet been measured to pay (bench/peers/fsync-elision.sh).
var defaultSeccomp = sync.OnceValues(func() ([]byte, error) {
	caps := make([]string, 0, len(sandboxinit.DefaultCaps))
	for _, c := range sandboxinit.DefaultCaps {
		name, ok := capNames[c]
		if !ok {
			return nil, fmt.Errorf("capability %d has no name for the seccomp profile", c)
		}
		caps = append(caps, name)
	}
	compile := seccomp.Default
	if os.Getenv(stepFsyncEnv) == "elide" {
		compile = seccomp.DefaultElidingSync
	}
	prog, err := compile(caps)
	if err != nil {
		return nil, err
	}
	return seccomp.Encode(prog), nil
})

// stepFsyncEnv set to "elide" turns seccomp.ElideSync on.
const stepFsyncEnv = "BUILDER_STEP_FSYNC"
