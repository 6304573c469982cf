//go:build !linux

package userns

import (
	"fmt"
	"os"
	"runtime"
)

// Rootless reports whether this process is a rootless builder; never here.
func Rootless() bool { return false }

// SingleID reports whether only one id is mapped; never here.
func SingleID() bool { return false }

// Init refuses to run as an ordinary user: rootless builds need Linux user
// namespaces.
func Init(warn func(string)) {
	if os.Geteuid() != 0 {
		fmt.Fprintln(os.Stderr, "ERROR: rootless builds are not supported on "+runtime.GOOS)
		os.Exit(1)
	}
}

// HostIDs: there is no rootless namespace off Linux.
func HostIDs() (uid, gid int, ok bool) { return 0, 0, false }
