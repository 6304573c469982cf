package executor_test

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/builder-dev/builder/executor"
	"github.com/builder-dev/builder/executor/mountpoints"
)

func TestExitStatus(t *testing.T) {
	lower := newBusyboxRootfs(t)
	tests := []struct {
		args []string
		want *executor.ExitError // nil: success
	}{
		{[]string{"true"}, nil},
		{[]string{"false"}, &executor.ExitError{Code: 1}},
		{[]string{"sh", "-c", "exit 3"}, &executor.ExitError{Code: 3}},
		// A child killed by a signal: its shell (pid 1) exits 128+9.
		{[]string{"sh", "-c", "sh -c 'kill -9 $$'; exit $?"}, &executor.ExitError{Code: 137}},
	}
	for _, tt := range tests {
		s := newSandbox(t, lower)
		_, _, err := run(t, s.spec(tt.args...))
		if tt.want == nil {
			if err != nil {
				t.Errorf("Run(%q) = %v, want nil", tt.args, err)
			}
			continue
		}
		var ee *executor.ExitError
		if !errors.As(err, &ee) || *ee != *tt.want {
			t.Errorf("Run(%q) = %v, want %v", tt.args, err, tt.want)
		}
	}
}

func TestStdio(t *testing.T) {
	s := newSandbox(t, newBusyboxRootfs(t))
	spec := s.spec("sh", "-c", "cat; echo out; echo err >&2")
	spec.Stdin = strings.NewReader("in\n")
	out, errOut, err := run(t, spec)
	if err != nil {
		t.Fatal(err)
	}
	if out != "in\nout\n" || errOut != "err\n" {
		t.Errorf("stdout, stderr = %q, %q; want %q, %q", out, errOut, "in\nout\n", "err\n")
	}
}

func TestEnvIsExact(t *testing.T) {
	s := newSandbox(t, newBusyboxRootfs(t))
	spec := s.spec("env")
	// HOME is added from /etc/passwd when Env has none, as runc does.
	spec.Env = []string{"PATH=/bin", "FOO=bar baz", "EMPTY="}
	got := strings.Split(mustRun(t, spec), "\n")
	if want := append(slices.Clone(spec.Env), "HOME=/root"); !slices.Equal(got, want) {
		t.Errorf("env in sandbox = %q, want %q", got, want)
	}

	// No PATH in Env: Args[0] is still found with the default PATH, and
	// no PATH is added.
	spec.Env = []string{"A=1", "HOME=/elsewhere"}
	if got := mustRun(t, spec); got != "A=1\nHOME=/elsewhere" {
		t.Errorf("env in sandbox = %q, want %q", got, "A=1\nHOME=/elsewhere")
	}
}

func TestCwd(t *testing.T) {
	s := newSandbox(t, newBusyboxRootfs(t))
	spec := s.spec("pwd")
	spec.Cwd = "/work/dir"
	if got := mustRun(t, spec); got != "/work/dir" {
		t.Errorf("pwd = %q, want /work/dir", got)
	}
	fi, err := os.Stat(filepath.Join(s.upper, "work/dir"))
	if err != nil {
		t.Fatalf("cwd not created in the upper dir: %v", err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if fi.Mode() != os.ModeDir|0o755 || st.Uid != 0 || st.Gid != 0 {
		t.Errorf("cwd mode %v owner %d:%d, want drwxr-xr-x 0:0", fi.Mode(), st.Uid, st.Gid)
	}

	// A symlink in the image cannot take the cwd out of the rootfs.
	lower := newBusyboxRootfs(t)
	if err := os.Symlink("/../../../../escape", filepath.Join(lower, "link")); err != nil {
		t.Fatal(err)
	}
	s = newSandbox(t, lower)
	spec = s.spec("pwd")
	spec.Cwd = "/link/sub"
	if got := mustRun(t, spec); got != "/escape/sub" {
		t.Errorf("pwd = %q, want /escape/sub", got)
	}
	if _, err := os.Stat(filepath.Join(s.upper, "escape/sub")); err != nil {
		t.Errorf("cwd through a symlink not created inside the rootfs: %v", err)
	}
}

func TestUser(t *testing.T) {
	lower := newBusyboxRootfs(t)
	tests := []struct {
		user, want, wantErr string
	}{
		{"", "uid=0(root) gid=0(root) groups=0(root)", ""},
		{"root", "uid=0(root) gid=0(root) groups=0(root)", ""},
		{"app", "uid=1000(app) gid=1000(app) groups=1000(app),2000(extra)", ""},
		{"1000", "uid=1000(app) gid=1000(app) groups=1000(app),2000(extra)", ""},
		{"1000:2000", "uid=1000(app) gid=2000(extra) groups=2000(extra)", ""},
		{"app:root", "uid=1000(app) gid=0(root) groups=0(root),2000(extra)", ""},
		{"4242", "uid=4242 gid=0(root) groups=0(root)", ""},
		{"4242:4343", "uid=4242 gid=4343 groups=4343", ""},
		{"nobody", "", `user "nobody" not found in /etc/passwd`},
		{"app:nogroup", "", `group "nogroup" not found in /etc/group`},
	}
	for _, tt := range tests {
		s := newSandbox(t, lower)
		spec := s.spec("id")
		spec.User = tt.user
		out, errOut, err := run(t, spec)
		if tt.wantErr != "" {
			var se *executor.SetupError
			if !errors.As(err, &se) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("Run(id) as %q = %v, want a SetupError containing %q", tt.user, err, tt.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("Run(id) as %q = %v; stderr %s", tt.user, err, errOut)
			continue
		}
		if got := strings.TrimSpace(out); got != tt.want {
			t.Errorf("id as %q = %q, want %q", tt.user, got, tt.want)
		}
	}
}

func TestHostname(t *testing.T) {
	lower := newBusyboxRootfs(t)
	for _, tt := range []struct{ set, want string }{{"", executor.DefaultHostname}, {"box1", "box1"}} {
		s := newSandbox(t, lower)
		spec := s.spec("sh", "-c", "hostname; grep -c \"^127.0.0.1.*$(hostname)\" /etc/hosts")
		spec.Hostname = tt.set
		want := tt.want + "\n1"
		if got := mustRun(t, spec); got != want {
			t.Errorf("hostname with Hostname %q = %q, want %q", tt.set, got, want)
		}
	}
}

func TestProcShowsOnlySandbox(t *testing.T) {
	s := newSandbox(t, newBusyboxRootfs(t))
	var pids []string
	for _, name := range strings.Fields(mustRun(t, s.spec("ls", "/proc"))) {
		if name[0] >= '0' && name[0] <= '9' {
			pids = append(pids, name)
		}
	}
	if !slices.Equal(pids, []string{"1"}) {
		t.Errorf("pids in the sandbox's /proc = %q, want [1] (ls itself)", pids)
	}
}

func TestDev(t *testing.T) {
	s := newSandbox(t, newBusyboxRootfs(t))
	script := `for n in null zero full random urandom tty; do test -c /dev/$n || echo "no /dev/$n"; done
for d in pts shm; do test -d /dev/$d || echo "no /dev/$d"; done
for l in ptmx fd stdin stdout stderr; do test -L /dev/$l || echo "no /dev/$l"; done
test -c /dev/pts/ptmx || echo "no /dev/pts/ptmx"
echo discarded > /dev/null
echo shm > /dev/shm/x && cat /dev/shm/x
head -c 5 /dev/zero | wc -c`
	if got := mustRun(t, s.spec("sh", "-c", script)); got != "shm\n5" {
		t.Errorf("/dev checks printed %q, want %q", got, "shm\n5")
	}
}

func TestUpperDirAndStubs(t *testing.T) {
	// The mountpoints the init creates when there is no layer of them.
	mountpoints.Use("")
	defer mountpoints.Use(mountpointLayerDir)
	s := newSandbox(t, newBusyboxRootfs(t))
	mustRun(t, s.spec("sh", "-c", "echo data > /newfile; echo nameserver 192.0.2.1 >> /etc/resolv.conf"))
	if b, err := os.ReadFile(filepath.Join(s.upper, "newfile")); err != nil || string(b) != "data\n" {
		t.Errorf("upper/newfile = %q, %v; want %q", b, err, "data\n")
	}
	// The lower has none of these: the sandbox created them as mountpoints
	// and must have removed them. (The copied-up etc/ may stay.)
	for _, p := range []string{"proc", "dev", "sys", "etc/hosts", "etc/resolv.conf"} {
		if _, err := os.Lstat(filepath.Join(s.upper, p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("stub %s left in the upper dir (Lstat: %v)", p, err)
		}
	}

	// A stub that is not empty any more is left alone. Here the lower has
	// no /etc at all, and the process writes into /etc.
	lower := newBusyboxRootfs(t)
	os.RemoveAll(filepath.Join(lower, "etc"))
	s = newSandbox(t, lower)
	mustRun(t, s.spec("sh", "-c", "echo keep > /etc/motd"))
	if _, err := os.Stat(filepath.Join(s.upper, "etc/motd")); err != nil {
		t.Errorf("file written in a stub directory was removed: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(s.upper, "etc/hosts")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("stub etc/hosts left in the upper dir (Lstat: %v)", err)
	}
}

func TestCancel(t *testing.T) {
	s := newSandbox(t, newBusyboxRootfs(t))
	// A token that makes the sleep findable in the host's process list.
	token := fmt.Sprintf("100.%d", time.Now().UnixNano()%1e6)
	ctx, cancel := context.WithCancel(t.Context())
	spec := s.spec("sh", "-c", "sleep "+token+" & sleep "+token)
	done := make(chan error, 1)
	go func() { done <- executor.Run(ctx, spec) }()
	deadline := time.Now().Add(5 * time.Second)
	for len(findProcs(t, "sleep\x00"+token)) < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := len(findProcs(t, "sleep\x00"+token)); n != 2 {
		t.Fatalf("found %d sleep processes, want 2", n)
	}
	start := time.Now()
	cancel()
	var err error
	select {
	case err = <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Run did not return within 5s of cancel")
	}
	if d := time.Since(start); d > time.Second {
		t.Errorf("Run returned %v after cancel, want promptly", d)
	}
	var ee *executor.ExitError
	if !errors.Is(err, context.Canceled) || !errors.As(err, &ee) || ee.Signal != syscall.SIGKILL {
		t.Errorf("Run after cancel = %v, want context.Canceled and killed by signal 9", err)
	}
	if pids := findProcs(t, "sleep\x00"+token); len(pids) != 0 {
		t.Errorf("processes survived the sandbox: %v", pids)
	}
	if kids := children(t); len(kids) != 0 {
		t.Errorf("the test process still has children %v", kids)
	}
	if b, err := os.ReadFile("/proc/self/mountinfo"); err != nil || strings.Contains(string(b), s.state) {
		t.Errorf("a mount under the state dir is visible on the host (%v):\n%s", err, b)
	}
}

// TestParentKilled checks that SIGKILL of the process that called Run
// takes the whole sandbox down (Pdeathsig).
func TestParentKilled(t *testing.T) {
	s := newSandbox(t, newBusyboxRootfs(t))
	token := fmt.Sprintf("200.%d", time.Now().UnixNano()%1e6)
	specJSON, err := json.Marshal(s.spec("sh", "-c", "sleep "+token+" & sleep "+token))
	if err != nil {
		t.Fatal(err)
	}
	helper := exec.Command(os.Args[0])
	helper.Env = append(os.Environ(), helperSpecEnv+"="+string(specJSON))
	helper.Stderr = os.Stderr
	if err := helper.Start(); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(5 * time.Second)
	for len(findProcs(t, "sleep\x00"+token)) < 2 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := len(findProcs(t, "sleep\x00"+token)); n != 2 {
		helper.Process.Kill()
		helper.Wait()
		t.Fatalf("found %d sleep processes, want 2", n)
	}
	helper.Process.Kill()
	helper.Wait()
	deadline = time.Now().Add(2 * time.Second)
	for len(findProcs(t, "sleep\x00"+token)) > 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if pids := findProcs(t, "sleep\x00"+token); len(pids) != 0 {
		for _, p := range pids {
			if pid, err := strconv.Atoi(p); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		t.Errorf("sandbox processes %v survived SIGKILL of the process that ran them", pids)
	}
}

func TestParallel(t *testing.T) {
	lower := newBusyboxRootfs(t)
	var wg sync.WaitGroup
	for i := range 8 {
		s := newSandbox(t, lower)
		wg.Go(func() {
			spec := s.spec("sh", "-c", "echo $N > /n; cat /n")
			spec.Env = append(spec.Env, fmt.Sprintf("N=%d", i))
			var out strings.Builder
			spec.Stdout = &out
			if err := executor.Run(t.Context(), spec); err != nil {
				t.Errorf("run %d: %v", i, err)
			} else if got, want := out.String(), fmt.Sprintf("%d\n", i); got != want {
				t.Errorf("run %d printed %q, want %q", i, got, want)
			}
		})
	}
	wg.Wait()
}

// children returns the pids of the test process's children, but for the
// init started ahead for the next sandbox.
func children(t *testing.T) []string {
	t.Helper()
	warm := strconv.Itoa(executor.WarmInitPID())
	files, err := filepath.Glob("/proc/self/task/*/children")
	if err != nil {
		t.Fatal(err)
	}
	var kids []string
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			t.Fatal(err)
		}
		for _, pid := range strings.Fields(string(b)) {
			if pid == warm {
				continue
			}
			// The default network's shared namespace holder and its
			// helper live as long as the test process, by design.
			cmd, _ := os.ReadFile("/proc/" + pid + "/cmdline")
			name := filepath.Base(strings.SplitN(string(cmd), "\x00", 2)[0])
			if name == "builder-netns-holder" || name == "slirp4netns" || name == "pasta" {
				continue
			}
			kids = append(kids, pid)
		}
	}
	return kids
}

// findProcs returns the host pids whose cmdline starts with prefix.
func findProcs(t *testing.T, prefix string) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []string
	for _, e := range ents {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err == nil && strings.HasPrefix(string(b), prefix) {
			pids = append(pids, e.Name())
		}
	}
	return pids
}

// statusField returns a field of /proc/<pid>/status as printed by the sandbox.
func statusField(status, name string) string {
	s := bufio.NewScanner(strings.NewReader(status))
	for s.Scan() {
		if v, ok := strings.CutPrefix(s.Text(), name+":"); ok {
			return strings.TrimSpace(v)
		}
	}
	return ""
}

func TestCapabilities(t *testing.T) {
	lower := newBusyboxRootfs(t)
	// Docker's default set: CHOWN DAC_OVERRIDE FOWNER FSETID KILL SETGID
	// SETUID SETPCAP NET_BIND_SERVICE NET_RAW SYS_CHROOT MKNOD AUDIT_WRITE
	// SETFCAP.
	const docker = "00000000a80425fb"
	tests := []struct {
		user               string
		bnd, eff, prm, inh string
	}{
		{"", docker, docker, docker, docker},
		{"app", docker, "0000000000000000", "0000000000000000", "0000000000000000"},
	}
	for _, tt := range tests {
		s := newSandbox(t, lower)
		spec := s.spec("cat", "/proc/self/status")
		spec.User = tt.user
		// Not the default network, which falls back to the host's without
		// NET_RAW where no network helper can run (TestNetworkFallback).
		spec.Network = executor.NetworkNone
		status := mustRun(t, spec)
		for _, f := range []struct{ name, want string }{
			{"CapBnd", tt.bnd}, {"CapEff", tt.eff}, {"CapPrm", tt.prm}, {"CapInh", tt.inh}, {"CapAmb", "0000000000000000"},
		} {
			if got := statusField(status, f.name); got != f.want {
				t.Errorf("user %q: %s = %s, want %s", tt.user, f.name, got, f.want)
			}
		}
	}
}

func TestMasks(t *testing.T) {
	s := newSandbox(t, newBusyboxRootfs(t))
	// Which of these exist depends on the kernel's configuration.
	script := `for f in /proc/kcore /proc/keys /proc/timer_list /proc/interrupts /proc/sched_debug; do
  [ -e $f ] && [ -n "$(head -c 1 $f)" ] && echo "unmasked $f"
done
for d in /proc/acpi /proc/scsi /sys/firmware; do
  [ -d $d ] && [ -n "$(ls -A $d)" ] && echo "unmasked $d"
done
grep -E ' /(proc/(sys|bus|fs|irq|asound|sysrq-trigger)|sys) ' /proc/self/mountinfo | grep -v ' ro,'
grep -cE ' /proc/sys ro,' /proc/self/mountinfo`
	if got := mustRun(t, s.spec("sh", "-c", script)); got != "1" {
		t.Errorf("mask checks printed %q, want %q", got, "1")
	}
}

func TestNoLeakedFDs(t *testing.T) {
	s := newSandbox(t, newBusyboxRootfs(t))
	// ls is pid 1; it holds 0-2 and the directory it reads (3).
	if got := strings.Fields(mustRun(t, s.spec("ls", "/proc/1/fd"))); !slices.Equal(got, []string{"0", "1", "2", "3"}) {
		t.Errorf("fds of the user process = %q, want [0 1 2 3]", got)
	}
}

func TestSetupErrors(t *testing.T) {
	lower := newBusyboxRootfs(t)
	tests := []struct {
		name   string
		modify func(*executor.Spec)
		want   string
	}{
		{"command not found", func(s *executor.Spec) { s.Args = []string{"nonexistent"} }, "executable file not found in $PATH"},
		{"not executable", func(s *executor.Spec) { s.Args = []string{"/etc/passwd"} }, "exec /etc/passwd: permission denied"},
		{"bad rootfs", func(s *executor.Spec) { s.Rootfs[0].Options[0] = "lowerdir=/nonexistent" }, "mounting rootfs: "},
	}
	for _, tt := range tests {
		s := newSandbox(t, lower)
		spec := s.spec("true")
		tt.modify(&spec)
		_, _, err := run(t, spec)
		var se *executor.SetupError
		if !errors.As(err, &se) || !strings.Contains(err.Error(), tt.want) {
			t.Errorf("%s: Run = %v, want a SetupError containing %q", tt.name, err, tt.want)
		}
	}
}

func BenchmarkRunTrue(b *testing.B) {
	s := newSandbox(b, newBusyboxRootfs(b))
	spec := s.spec("/bin/true")
	ctx := context.Background()
	for b.Loop() {
		if err := executor.Run(ctx, spec); err != nil {
			b.Fatal(err)
		}
	}
}

func TestBindMounts(t *testing.T) {
	s := newSandbox(t, newBusyboxRootfs(t))
	hostDir := t.TempDir()
	script := filepath.Join(t.TempDir(), "script")
	os.WriteFile(script, []byte("#!/bin/sh\necho from script\n"), 0o755)
	spec := s.spec("sh", "-c", "/dev/pipes/script; echo rw > /mnt/data/out; echo ro > /dev/pipes/script 2>/dev/null || echo read-only")
	spec.Mounts = []executor.BindMount{
		{Source: script, Target: "/dev/pipes/script", Readonly: true},
		{Source: hostDir, Target: "/mnt/data"},
	}
	if got := mustRun(t, spec); got != "from script\nread-only" {
		t.Errorf("bind mounts printed %q", got)
	}
	if b, _ := os.ReadFile(filepath.Join(hostDir, "out")); string(b) != "rw\n" {
		t.Errorf("write through the rw bind mount = %q, want rw", b)
	}
	// The mountpoint /mnt/data was a stub: it must not stay in the layer.
	if _, err := os.Lstat(filepath.Join(s.upper, "mnt")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("bind mountpoint left in the upper dir (Lstat: %v)", err)
	}
}
