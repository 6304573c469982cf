package warm

import "golang.org/x/sys/unix"

// exited reports whether the child pid has exited, leaving it to be
// reaped by its Wait.
func exited(pid int) bool {
	var info unix.Siginfo
	var err error = unix.EINTR
	for err == unix.EINTR {
		err = unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
	}
	// With WNOHANG, a child still running leaves info zero.
	return err != nil || info.Signo != 0
}
