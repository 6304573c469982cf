package seccomp

import (
	"os"
	"runtime"
	"strings"
	"testing"

	"github.com/builder-dev/builder/executor/sandboxinit"
	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

// dockerCaps is Docker's default capability set.
var dockerCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// TestDefaultProfile runs Docker's profile, compiled, on the calls the
// sandbox must refuse and on those a build needs.
func TestDefaultProfile(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("the expectations below are for amd64 and its i386 and x32 ABIs")
	}
	p, err := DefaultProfile(dockerCaps)
	if err != nil {
		t.Fatal(err)
	}
	prog, err := Compile(p)
	if err != nil {
		t.Fatalf("Compile(default profile) = %v", err)
	}
	t.Logf("default profile: %d instructions", len(prog))
	x64, x32, i386 := specs.ArchX86_64, specs.ArchX32, specs.ArchX86
	const (
		allow  = retAllow
		eperm  = retErrno | errnoEPERM
		enosys = retErrno | errnoENOSYS
	)
	for _, tc := range []struct {
		c    call
		want uint32
	}{
		// What a build does.
		{sys(t, x64, "read"), allow},
		{sys(t, x64, "execve"), allow},
		{sys(t, x64, "mknodat"), allow},
		{sys(t, x64, "fchownat"), allow},
		{sys(t, x64, "setresuid"), allow},
		{sys(t, x64, "capset"), allow},
		{sys(t, x64, "chroot"), allow}, // CAP_SYS_CHROOT
		{sys(t, x64, "clone", uint64(unix.SIGCHLD)), allow},
		{sys(t, x64, "clone", unix.CLONE_VM|unix.CLONE_FS|unix.CLONE_FILES|unix.CLONE_SIGHAND|unix.CLONE_THREAD|unix.CLONE_SYSVSEM|unix.CLONE_SETTLS), allow},
		{sys(t, x64, "socket", unix.AF_INET), allow},
		{sys(t, x64, "socket", unix.AF_UNIX), allow},
		{sys(t, x64, "socket", unix.AF_NETLINK), allow},
		{sys(t, x64, "personality", 0), allow},
		{sys(t, x64, "personality", 0xffffffff), allow},
		{sys(t, x64, "personality", 0x0008), allow}, // PER_LINUX32 (linux32, setarch)
		{sys(t, x64, "arch_prctl"), allow},
		{sys(t, x32, "read"), allow},
		{sys(t, i386, "socketcall"), allow},
		{sys(t, i386, "read"), allow},
		// What the sandbox refuses.
		{sys(t, x64, "keyctl"), eperm},
		{sys(t, x64, "add_key"), eperm},
		{sys(t, x64, "request_key"), eperm},
		{sys(t, x64, "mount"), eperm},
		{sys(t, x64, "umount2"), eperm},
		{sys(t, x64, "unshare"), eperm},
		{sys(t, x64, "setns"), eperm},
		{sys(t, x64, "bpf"), eperm},
		{sys(t, x64, "perf_event_open"), eperm},
		{sys(t, x64, "kexec_load"), eperm},
		{sys(t, x64, "init_module"), eperm},
		{sys(t, x64, "open_by_handle_at"), eperm},
		{sys(t, x64, "fsopen"), eperm},
		{sys(t, x64, "sethostname"), eperm},
		{sys(t, x64, "clone", unix.CLONE_NEWUSER|uint64(unix.SIGCHLD)), eperm},
		{sys(t, x64, "clone", unix.CLONE_NEWNS), eperm},
		{sys(t, x64, "clone3"), enosys},
		{sys(t, x64, "socket", unix.AF_VSOCK), eperm},
		{sys(t, x64, "socket", unix.AF_ALG), eperm},
		{sys(t, x64, "personality", 0x0040000), eperm}, // ADDR_NO_RANDOMIZE
		{sys(t, x32, "mount"), eperm},
		{sys(t, x32, "keyctl"), eperm},
		{sys(t, i386, "mount"), eperm},
		{sys(t, i386, "keyctl"), eperm},
	} {
		if got := runFilter(t, prog, auditArch(tc.c.abi), tc.c); got != tc.want {
			_, names := mustABI(tc.c.abi).syscalls()
			t.Errorf("%s %s(%#x): filter returns %#x, want %#x", tc.c.abi,
				names[tc.c.nr&^mustABI(tc.c.abi).base], tc.c.args[0], got, tc.want)
		}
	}
}

// TestDefaultProfileArm64 compiles the profile's rules for arm64 and its
// 32-bit ABI, as an arm64 host resolves them.
func TestDefaultProfileArm64(t *testing.T) {
	p, err := DefaultProfile(dockerCaps)
	if err != nil {
		t.Fatal(err)
	}
	p.Architectures = []specs.Arch{specs.ArchAARCH64, specs.ArchARM}
	prog, err := Compile(p)
	if err != nil {
		t.Fatalf("Compile(default profile, arm64) = %v", err)
	}
	a64, arm := specs.ArchAARCH64, specs.ArchARM
	for _, tc := range []struct {
		c    call
		want uint32
	}{
		{sys(t, a64, "openat"), retAllow},
		{sys(t, a64, "keyctl"), retErrno | errnoEPERM},
		{sys(t, a64, "clone", unix.CLONE_NEWUSER), retErrno | errnoEPERM},
		{sys(t, arm, "read"), retAllow},
		{sys(t, arm, "mount"), retErrno | errnoEPERM},
		{sys(t, specs.ArchX86_64, "read"), retKillProcess},
	} {
		if got := runFilter(t, prog, auditArch(tc.c.abi), tc.c); got != tc.want {
			t.Errorf("%s nr %#x: filter returns %#x, want %#x", tc.c.abi, tc.c.nr, got, tc.want)
		}
	}
}

// TestLoad loads the default profile, as the sandbox init does, on one
// thread of the test, which then ends with its goroutine, and tries calls
// in the kernel.
func TestLoad(t *testing.T) {
	prog, err := Default(dockerCaps)
	if err != nil {
		t.Fatal(err)
	}
	onFilteredThread(t, prog, checkFiltered)
}

// onFilteredThread installs prog on a thread of its own, which then ends
// with its goroutine, and runs check there.
func onFilteredThread(t *testing.T, prog []bpf.RawInstruction, check func() error) {
	t.Helper()
	encoded := Encode(prog)
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
		if err := sandboxinit.LoadSeccomp(encoded); err != nil {
			done <- err
			return
		}
		done <- check()
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
		return errorf("thread status has no Seccomp: 2:\n%s", status)
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
			return errorf("%s under the filter: errno %v, want %v", tc.name, e, tc.want)
		}
	}
	return nil
}

// BenchmarkDefault is the cost of resolving and compiling the profile,
// which the executor pays once per process.
func BenchmarkDefault(b *testing.B) {
	for b.Loop() {
		if _, err := Default(dockerCaps); err != nil {
			b.Fatal(err)
		}
	}
}

// TestElideSync installs the profile with ElideSync on one thread: the
// sync calls on a closed descriptor succeed instead of failing with
// EBADF (so they did not run), and the rest of the profile still holds.
func TestElideSync(t *testing.T) {
	prog, err := DefaultElidingSync(dockerCaps)
	if err != nil {
		t.Fatal(err)
	}
	const closed = 1 << 20
	onFilteredThread(t, prog, func() error {
		for _, tc := range []struct {
			name string
			nr   uintptr
			want unix.Errno
		}{
			{"fsync", unix.SYS_FSYNC, 0},
			{"fdatasync", unix.SYS_FDATASYNC, 0},
			{"syncfs", unix.SYS_SYNCFS, 0},
			{"sync_file_range", unix.SYS_SYNC_FILE_RANGE, 0},
			{"fstat", unix.SYS_FSTAT, unix.EBADF},
			{"keyctl", unix.SYS_KEYCTL, unix.EPERM},
		} {
			if _, _, e := unix.RawSyscall(tc.nr, closed, 0, 0); e != tc.want {
				return errorf("%s(closed fd) under the filter: errno %v, want %v", tc.name, e, tc.want)
			}
		}
		return checkFiltered()
	})
	// Without the filter the same calls fail, so the test can tell.
	if err := unix.Fsync(closed); err != unix.EBADF {
		t.Fatalf("fsync(closed fd) without the filter = %v, want EBADF", err)
	}
}
