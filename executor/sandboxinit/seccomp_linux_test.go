package sandboxinit

import (
	"fmt"
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/builder-dev/builder/internal/seccomp"
	"golang.org/x/sys/unix"
)

// dockerCaps is Docker's default capability set.
var dockerCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// TestLoadSeccomp installs the default profile, compiled as the parent
// does, on one thread of the test,
// which then ends with its goroutine, and tries calls in the kernel.
func TestLoadSeccomp(t *testing.T) {
	prog, err := seccomp.Default(dockerCaps)
	if err != nil {
		t.Fatal(err)
	}
	encoded := seccomp.Encode(prog)
	done := make(chan error, 1)
	go func() {
		// Never unlocked: the thread, filter and all, exits with us.
		runtime.LockOSThread()
		if os.Geteuid() != 0 {
			// Without CAP_SYS_ADMIN the kernel wants no_new_privs.
			if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
				done <- err
				return
			}
		}
		if err := loadSeccomp(encoded); err != nil {
			done <- err
			return
		}
		done <- checkFiltered()
	}()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}

func checkFiltered() error {
	status, err := os.ReadFile("/proc/thread-self/status")
	if err != nil {
		return err
	}
	if !strings.Contains(string(status), "\nSeccomp:\t2\n") {
		return fmt.Errorf("thread status has no Seccomp: 2:\n%s", status)
	}
	for _, tc := range []struct {
		name string
		nr   uintptr
		args [3]uintptr
		want unix.Errno
	}{
		{"keyctl(KEYCTL_GET_KEYRING_ID)", unix.SYS_KEYCTL, [3]uintptr{unix.KEYCTL_GET_KEYRING_ID, 0, 0}, unix.EPERM},
		{"unshare(CLONE_NEWUSER)", unix.SYS_UNSHARE, [3]uintptr{unix.CLONE_NEWUSER}, unix.EPERM},
		{"clone3", unix.SYS_CLONE3, [3]uintptr{}, unix.ENOSYS},
		{"bpf", unix.SYS_BPF, [3]uintptr{}, unix.EPERM},
		{"getpid", unix.SYS_GETPID, [3]uintptr{}, 0},
	} {
		_, _, e := unix.RawSyscall(tc.nr, tc.args[0], tc.args[1], tc.args[2])
		if e != tc.want {
			return fmt.Errorf("%s under the filter: errno %v, want %v", tc.name, e, tc.want)
		}
	}
	return nil
}

// TestLoadSeccompRefusesMalformed: a program that is not whole sock_filter
// records never reaches the kernel.
func TestLoadSeccompRefusesMalformed(t *testing.T) {
	for _, n := range []int{1, 7, 9, 8 * 4097} {
		if err := loadSeccomp(make([]byte, n)); err == nil {
			t.Errorf("loadSeccomp(%d bytes) succeeded", n)
		}
	}
}
