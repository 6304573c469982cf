package seccomp

import (
	"errors"
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Install adds the encoded program (see Encode) as a seccomp filter of the
// calling thread; the threads it clones and the program it execs inherit
// it. It does not set no_new_privs, so setuid programs keep working after
// execve, which the kernel allows only while the thread has CAP_SYS_ADMIN
// in its user namespace: install before dropping capabilities.
func Install(encoded []byte) error {
	prog, err := Decode(encoded)
	if err != nil {
		return err
	}
	filters := make([]unix.SockFilter, len(prog))
	for i, ins := range prog {
		filters[i] = unix.SockFilter{Code: ins.Op, Jt: ins.Jt, Jf: ins.Jf, K: ins.K}
	}
	fprog := unix.SockFprog{Len: uint16(len(filters)), Filter: &filters[0]}
	_, _, e := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, 0, uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(filters)
	switch e {
	case 0:
		return nil
	case unix.EACCES:
		return os.NewSyscallError("seccomp(SECCOMP_SET_MODE_FILTER) without CAP_SYS_ADMIN", e)
	case unix.EINVAL, unix.ENOSYS:
		return errors.Join(os.NewSyscallError("seccomp(SECCOMP_SET_MODE_FILTER)", e),
			errors.New("the kernel needs CONFIG_SECCOMP_FILTER for the sandbox's seccomp profile"))
	}
	return os.NewSyscallError("seccomp(SECCOMP_SET_MODE_FILTER)", e)
}
