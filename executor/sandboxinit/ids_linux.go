package sandboxinit

import (
	"os"
	"unsafe"

	"github.com/builder-dev/builder/executor/passwd"
	"golang.org/x/sys/unix"
)

// setIDs sets the supplementary groups, gid and uid of the calling thread
// only. Go's Setgroups/Setresuid change every thread of the process, which
// costs a signal round trip to each; the init only needs the thread that
// will execve, as execve ends the others.
func setIDs(u passwd.User) error {
	gids := make([]uint32, len(u.Groups))
	for i, g := range u.Groups {
		gids[i] = uint32(g)
	}
	var p unsafe.Pointer
	if len(gids) > 0 {
		p = unsafe.Pointer(&gids[0])
	}
	if _, _, e := unix.RawSyscall(sysSetgroups, uintptr(len(gids)), uintptr(p), 0); e != 0 {
		// A user namespace that maps a single id denies setgroups; the
		// process then keeps the (one) group it has.
		if e != unix.EPERM || !setgroupsDenied() {
			return os.NewSyscallError("setgroups", e)
		}
	}
	g, uid := uintptr(u.GID), uintptr(u.UID)
	if _, _, e := unix.RawSyscall(sysSetresgid, g, g, g); e != 0 {
		return os.NewSyscallError("setresgid", e)
	}
	if _, _, e := unix.RawSyscall(sysSetresuid, uid, uid, uid); e != 0 {
		return os.NewSyscallError("setresuid", e)
	}
	return nil
}

// setgroupsDenied reports whether this user namespace forbids setgroups.
func setgroupsDenied() bool {
	b, err := os.ReadFile("/proc/self/setgroups")
	return err == nil && string(b) == "deny\n"
}
