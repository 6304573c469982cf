package sandboxinit

import (
	"errors"
	"fmt"
	"os"
	"runtime"
	"unsafe"

	"golang.org/x/sys/unix"
)

// installSeccomp installs the filter the parent compiled (Config.Seccomp)
// on the init's thread, the one that execs; the threads it clones and the
// program it execs inherit it. The init only loads it: the compiler
// (internal/seccomp) and the profile's data stay out of the init binary.
//
// It runs while that thread still has CAP_SYS_ADMIN, so no no_new_privs is
// needed and setuid programs in the step keep working (the kernel allows a
// filter without no_new_privs only then); the init's remaining calls
// (setgroups, setresuid, capset, prctl, write, close_range, execve) are all
// allowed by the profile.
func installSeccomp(prog []byte) error {
	if len(prog) == 0 {
		return nil
	}
	if err := LoadSeccomp(prog); err != nil {
		return fmt.Errorf("installing seccomp filter: %w", err)
	}
	return nil
}

// LoadSeccomp adds prog, the kernel's struct sock_filter array in this
// machine's byte order (internal/seccomp.Encode), as a seccomp filter of
// the calling thread. It does not set no_new_privs: see installSeccomp.
func LoadSeccomp(prog []byte) error {
	if len(prog) == 0 || len(prog)%8 != 0 || len(prog) > maxSeccompSize {
		return fmt.Errorf("seccomp program of %d bytes: want 1 to 4096 instructions of 8 bytes", len(prog))
	}
	// struct sock_filter is {u16 code; u8 jt; u8 jf; u32 k}: 8 bytes, the
	// layout of prog, which is copied to get the alignment right.
	filters := make([]unix.SockFilter, len(prog)/8)
	copy(unsafe.Slice((*byte)(unsafe.Pointer(&filters[0])), len(prog)), prog)
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
