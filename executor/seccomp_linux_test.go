package executor_test

import (
	"debug/elf"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"unsafe"

	"github.com/builder-dev/builder/executor"
	"github.com/builder-dev/builder/executor/seccompprog"
	"github.com/builder-dev/builder/internal/userns"
	"golang.org/x/sys/unix"
)

// probeEnv makes the test binary, run inside a sandbox, try the calls of
// one probe and print what each returned, one "name result" per line.
const probeEnv = "EXECUTOR_TEST_PROBE"

// probes are the calls a step must not get through, and a workload it
// must run. Each returns the errno ("EPERM", ...) or "ok".
var probes = map[string]func(arg string) string{
	"keyctl": func(string) string {
		// The attack of the review: a key from the host user's keyring.
		_, err := unix.KeyctlInt(unix.KEYCTL_GET_KEYRING_ID, unix.KEY_SPEC_USER_KEYRING, 0, 0, 0)
		return errName(err)
	},
	"add_key": func(string) string {
		_, err := unix.AddKey("user", "probe", []byte("v"), unix.KEY_SPEC_PROCESS_KEYRING)
		return errName(err)
	},
	"request_key": func(string) string {
		_, err := unix.RequestKey("user", "probe", "", unix.KEY_SPEC_PROCESS_KEYRING)
		return errName(err)
	},
	"unshare": func(string) string {
		return errName(unix.Unshare(unix.CLONE_NEWUSER | unix.CLONE_NEWNS))
	},
	"mount": func(string) string {
		return errName(unix.Mount("none", "/tmp", "tmpfs", 0, ""))
	},
	"bpf": func(string) string {
		attr := make([]byte, 128) // BPF_MAP_CREATE of nothing
		return errnoOf(unix.Syscall(unix.SYS_BPF, 0, uintptr(unsafe.Pointer(&attr[0])), uintptr(len(attr))))
	},
	"perf_event_open": func(string) string {
		attr := unix.PerfEventAttr{Type: unix.PERF_TYPE_SOFTWARE, Config: unix.PERF_COUNT_SW_CPU_CLOCK}
		attr.Size = uint32(unsafe.Sizeof(attr))
		fd, err := unix.PerfEventOpen(&attr, 0, -1, -1, 0)
		if err == nil {
			unix.Close(fd)
		}
		return errName(err)
	},
	"kexec_load": func(string) string {
		return errnoOf(unix.Syscall6(unix.SYS_KEXEC_LOAD, 0, 0, 0, 0, 0, 0))
	},
	"clone3": func(string) string {
		// Docker's profile answers ENOSYS so that libc falls back to clone.
		return errnoOf(unix.Syscall(unix.SYS_CLONE3, 0, 0, 0))
	},
	"socket_vsock": func(string) string {
		fd, err := unix.Socket(unix.AF_VSOCK, unix.SOCK_STREAM, 0)
		if err == nil {
			unix.Close(fd)
		}
		return errName(err)
	},
	"ptrace_host": func(pid string) string {
		n, _ := strconv.Atoi(pid)
		return errName(unix.PtraceAttach(n))
	},
	"sync_closed": func(string) string {
		// On a descriptor that is not open, a sync call that runs fails
		// with EBADF; an elided one succeeds.
		const closed = 1 << 20
		var got []string
		for _, nr := range []uintptr{unix.SYS_FSYNC, unix.SYS_FDATASYNC, unix.SYS_SYNCFS, unix.SYS_SYNC_FILE_RANGE} {
			got = append(got, errnoOf(unix.Syscall(nr, closed, 0, 0)))
		}
		return strings.Join(got, " ")
	},
	"workload": func(string) string { return goWorkload() },
	"euid":     func(string) string { return strconv.Itoa(os.Geteuid()) },
}

// runProbes runs the probes named in the comma-separated spec, with
// their "name=arg" arguments, and returns the exit code.
func runProbes(spec string) int {
	for _, p := range strings.Split(spec, ",") {
		name, arg, _ := strings.Cut(p, "=")
		f, ok := probes[name]
		if !ok {
			fmt.Fprintf(os.Stderr, "unknown probe %q\n", name)
			return 2
		}
		fmt.Printf("%s %s\n", name, f(arg))
	}
	return 0
}

func errnoOf(_, _ uintptr, e unix.Errno) string {
	if e == 0 {
		return "ok"
	}
	return errName(e)
}

func errName(err error) string {
	if err == nil {
		return "ok"
	}
	if e, ok := err.(unix.Errno); ok && unix.ErrnoName(e) != "" {
		return unix.ErrnoName(e)
	}
	return err.Error()
}

// goWorkload is what a Go program in a step does: threads, fork and exec,
// files, ownership, device nodes.
func goWorkload() string {
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Go(func() {
			p := filepath.Join("/tmp", "go"+strconv.Itoa(i))
			if errs[i] = os.WriteFile(p, []byte("x"), 0o644); errs[i] == nil {
				errs[i] = os.Lchown(p, 1000+i, 1000+i)
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			return err.Error()
		}
	}
	if err := unix.Mknod("/tmp/go-fifo", unix.S_IFIFO|0o666, 0); err != nil {
		return "mknod: " + err.Error()
	}
	out, err := exec.Command("/bin/echo", "child").Output()
	if err != nil || string(out) != "child\n" {
		return fmt.Sprintf("exec: %q %v", out, err)
	}
	return "ok"
}

// bindSelf binds this test binary at /probe in the sandbox, with the
// dynamic loader and libraries it needs at their host paths, so that it
// runs in a busybox rootfs.
func bindSelf(t *testing.T, spec *executor.Spec) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	spec.Mounts = append(spec.Mounts, executor.BindMount{Source: exe, Target: "/probe", Readonly: true})
	f, err := elf.Open(exe)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var files []string
	for _, p := range f.Progs {
		if p.Type == elf.PT_INTERP {
			b := make([]byte, p.Filesz)
			if _, err := p.ReadAt(b, 0); err != nil {
				t.Fatal(err)
			}
			files = append(files, strings.TrimRight(string(b), "\x00"))
		}
	}
	libs, err := f.ImportedLibraries()
	if err != nil {
		t.Fatal(err)
	}
	dirs := []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib/aarch64-linux-gnu",
		"/usr/lib/aarch64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"}
	for _, lib := range libs {
		found := ""
		for _, d := range dirs {
			if _, err := os.Stat(filepath.Join(d, lib)); err == nil {
				found = filepath.Join(d, lib)
				break
			}
		}
		if found == "" {
			t.Skipf("cannot find %s, which the test binary needs, to bind it into the sandbox", lib)
		}
		files = append(files, found)
	}
	for _, p := range files {
		spec.Mounts = append(spec.Mounts, executor.BindMount{Source: p, Target: p, Readonly: true})
	}
}

// addApplets adds busybox applet symlinks to a rootfs from newBusyboxRootfs.
func addApplets(t *testing.T, lower string, applets ...string) {
	t.Helper()
	for _, a := range applets {
		if err := os.Symlink("busybox", filepath.Join(lower, "bin", a)); err != nil && !os.IsExist(err) {
			t.Fatal(err)
		}
	}
}

func TestSeccompStatus(t *testing.T) {
	lower := newBusyboxRootfs(t)
	for _, tt := range []struct {
		user     string
		insecure bool
		want     string
	}{
		{"", false, "2"},
		{"app", false, "2"},
		{"", true, "0"},
	} {
		s := newSandbox(t, lower)
		spec := s.spec("cat", "/proc/self/status")
		spec.User, spec.Insecure = tt.user, tt.insecure
		status := mustRun(t, spec)
		if got := statusField(status, "Seccomp"); got != tt.want {
			t.Errorf("user %q, insecure %v: Seccomp: %s, want %s", tt.user, tt.insecure, got, tt.want)
		}
		// As in Docker: no no_new_privs, so setuid programs work.
		if got := statusField(status, "NoNewPrivs"); got != "0" {
			t.Errorf("user %q, insecure %v: NoNewPrivs: %s, want 0", tt.user, tt.insecure, got)
		}
	}
}

// TestSeccompKeepsSetuid runs a setuid-root program as an ordinary user
// under the filter: it must gain euid 0, as su and sudo need.
func TestSeccompKeepsSetuid(t *testing.T) {
	lower := newBusyboxRootfs(t)
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(exe)
	if err != nil {
		t.Fatal(err)
	}
	suid := filepath.Join(lower, "bin", "suid-probe")
	if err := os.WriteFile(suid, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(suid, os.ModeSetuid|0o755); err != nil { // after the write: umask
		t.Fatal(err)
	}
	s := newSandbox(t, lower)
	spec := s.spec("/bin/suid-probe")
	spec.User = "app"
	spec.Env = append(spec.Env, probeEnv+"=euid")
	bindSelf(t, &spec)
	if got := mustRun(t, spec); got != "euid 0" {
		t.Errorf("setuid-root program run by app printed %q, want euid 0", got)
	}
}

// TestSeccompAttacks tries, from inside a step, what the review did and
// what Docker's profile exists to stop, and checks each errno.
func TestSeccompAttacks(t *testing.T) {
	lower := newBusyboxRootfs(t)
	s := newSandbox(t, lower)
	want := []string{
		"keyctl EPERM",
		"add_key EPERM",
		"request_key EPERM",
		"unshare EPERM",
		"mount EPERM",
		"bpf EPERM",
		"perf_event_open EPERM",
		"kexec_load EPERM",
		"clone3 ENOSYS",
		"socket_vsock EPERM",
		// ptrace is in Docker's profile (kernel >= 4.8); the pid namespace
		// hides the host's processes.
		"ptrace_host ESRCH",
	}
	var names []string
	for _, w := range want {
		name, _, _ := strings.Cut(w, " ")
		if name == "ptrace_host" {
			name += "=" + strconv.Itoa(os.Getpid())
		}
		names = append(names, name)
	}
	spec := s.spec("/probe")
	spec.Env = append(spec.Env, probeEnv+"="+strings.Join(names, ","))
	bindSelf(t, &spec)
	got := mustRun(t, spec)
	if got != strings.Join(want, "\n") {
		t.Errorf("probes in the sandbox printed\n%s\nwant\n%s", got, strings.Join(want, "\n"))
	}
}

// TestSeccompShellAttacks does the review's unshare and mount with
// busybox, as a Dockerfile would.
func TestSeccompShellAttacks(t *testing.T) {
	lower := newBusyboxRootfs(t)
	addApplets(t, lower, "unshare")
	s := newSandbox(t, lower)
	script := `unshare -U -r -m true 2>&1 && echo unshare succeeded
mount -t tmpfs none /tmp 2>&1 && echo mount succeeded
grep ' /tmp ' /proc/self/mounts
true`
	got := mustRun(t, s.spec("sh", "-c", script))
	if strings.Contains(got, "succeeded") || strings.Contains(got, "tmpfs") || !strings.Contains(got, "Operation not permitted") {
		t.Errorf("unshare and mount in a step printed %q, want both refused with EPERM", got)
	}
}

// TestSeccompWorkload runs what builds do under the profile: a shell,
// tar of device nodes and owned files, chown, mknod, and a Go program
// that starts threads and a child process.
func TestSeccompWorkload(t *testing.T) {
	lower := newBusyboxRootfs(t)
	addApplets(t, lower, "tar", "mknod", "chown", "ln", "rm")
	s := newSandbox(t, lower)
	// In a user namespace the kernel refuses device nodes (and overlayfs
	// the whiteout 0,0), with or without seccomp: a fifo stands in.
	dev, devLine := "c 1 3", "out/src/dev 0:0 character special file 1,3"
	if userns.Rootless() {
		dev, devLine = "p", "out/src/dev 0:0 fifo 0,0"
	}
	script := `set -e
mkdir -p /w/src /w/out && cd /w
echo data > src/f && chown 1000:2000 src/f
mknod src/dev ` + dev + ` && mknod src/fifo p && ln -s f src/l
tar -cf a.tar src && tar -xf a.tar -C out
stat -c '%n %u:%g %F %t,%T' out/src/f out/src/dev out/src/fifo out/src/l
/probe`
	spec := s.spec("sh", "-c", script)
	spec.Env = append(spec.Env, probeEnv+"=workload")
	bindSelf(t, &spec)
	want := `out/src/f 1000:2000 regular file 0,0
` + devLine + `
out/src/fifo 0:0 fifo 0,0
out/src/l 0:0 symbolic link 0,0
workload ok`
	if got := mustRun(t, spec); got != want {
		t.Errorf("workload printed\n%s\nwant\n%s", got, want)
	}
}

// TestSeccompElideSync runs the sync calls on a closed descriptor in a
// sandbox: they run (EBADF) unless the Spec elides them, as a build
// step's does, and $BUILDER_STEP_FSYNC=run makes them run again.
func TestSeccompElideSync(t *testing.T) {
	lower := newBusyboxRootfs(t)
	for _, tc := range []struct {
		elide bool
		env   string
		want  string
	}{
		{false, "", "EBADF EBADF EBADF EBADF"},
		{true, "", "ok ok ok ok"},
		{true, "run", "EBADF EBADF EBADF EBADF"},
		{false, "elide", "EBADF EBADF EBADF EBADF"},
	} {
		t.Setenv(seccompprog.StepFsyncEnv, tc.env)
		s := newSandbox(t, lower)
		spec := s.spec("/probe")
		spec.ElideSync = tc.elide
		spec.Env = append(spec.Env, probeEnv+"=sync_closed")
		bindSelf(t, &spec)
		if got, want := mustRun(t, spec), "sync_closed "+tc.want; got != want {
			t.Errorf("ElideSync %v, $%s=%q: probe printed %q, want %q", tc.elide, seccompprog.StepFsyncEnv, tc.env, got, want)
		}
	}
}
