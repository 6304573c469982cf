//go:build linux && (386 || arm)

package sandboxinit

import "golang.org/x/sys/unix"

// On 386 and arm the plain calls take 16-bit ids.
const (
	sysSetgroups = unix.SYS_SETGROUPS32
	sysSetresgid = unix.SYS_SETRESGID32
	sysSetresuid = unix.SYS_SETRESUID32
)
