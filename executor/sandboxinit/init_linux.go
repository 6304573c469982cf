package sandboxinit

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"

	"github.com/builder-dev/builder/executor/passwd"
	"github.com/builder-dev/builder/executor/sandboxinit/rootfs"
	units "github.com/docker/go-units"
	"golang.org/x/sys/unix"
)

// The sandbox init runs from this package's initialisation, before any
// package that does not import it and before main: the runtime keeps the
// main goroutine on the main thread while packages initialise, and that
// thread must be the one that runs the init (it carries the Pdeathsig that
// exec.Cmd set, and it will execve). Locking it ourselves, with
// runtime.LockOSThread, would also start the runtime's template thread:
// one more thread to create, and for execve to kill, at every step.
func init() {
	if os.Getenv(Env) == EnvInit {
		os.Exit(initMain())
	}
}

// Main runs the holder of a shared network namespace and never returns if
// this process was started as one (see Env); otherwise it returns at once.
// (The sandbox init itself has run, and exited, before main: see init.)
func Main() {
	if os.Getenv(Env) == EnvHold {
		os.Exit(holdNamespace())
	}
}

// initMain runs in the new namespaces, as pid 1. It returns only on
// failure, with the exit code.
func initMain() int {
	// The report pipe closes at execve, which tells the parent that the
	// user process started.
	unix.CloseOnExec(ReportFD)
	reports := os.NewFile(ReportFD, "report")
	var cfg Config
	specFile := os.NewFile(SpecFD, "spec")
	err := ReadConfig(specFile, &cfg)
	if err == nil {
		// The seccomp program and the secrets follow the config.
		err = readPayload(specFile, &cfg)
	}
	specFile.Close()
	if err != nil {
		sendReport(reports, nil, stepError("reading spec", err))
		return 1
	}
	dir := filepath.Join(cfg.StateDir, "rootfs")
	s := &sandbox{spec: cfg, rootDir: dir, root: rootfs.New(dir, cfg.StateDir, cfg.Insecure, cfg.ShmSize)}
	// Limits are set while init may still raise them (before privileges
	// are dropped); execve keeps them.
	err = setUlimits(cfg.Ulimits)
	if err == nil {
		err = s.setup()
	}
	if err == nil {
		err = waitNetwork(s.spec.Net)
	}
	if err != nil {
		sendReport(reports, s.root.Stubs(), err)
		return 1
	}
	if err := sendReport(reports, s.root.Stubs(), nil); err != nil {
		return 1 // the parent is gone
	}
	// Nothing but stdio may reach the user process.
	if err := unix.CloseRange(3, ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err != nil {
		unix.CloseOnExec(ReportFD)
	}
	err = unix.Exec(s.path, s.spec.Args, s.spec.Env)
	sendReport(reports, nil, stepError(fmt.Sprintf("exec %s", s.path), err))
	return 1
}

// setUlimits sets the resource limits of --ulimit on this process.
func setUlimits(limits []Ulimit) error {
	for _, l := range limits {
		u := units.Ulimit{Name: l.Name, Soft: l.Soft, Hard: l.Hard}
		rl, err := u.GetRlimit()
		if err != nil {
			return stepError("ulimit "+l.Name, err)
		}
		lim := unix.Rlimit{Cur: uint64(rl.Soft), Max: uint64(rl.Hard)}
		if err := unix.Setrlimit(rl.Type, &lim); err != nil {
			return stepError(fmt.Sprintf("setting ulimit %s=%d:%d", l.Name, l.Soft, l.Hard), err)
		}
	}
	return nil
}

// stepError names the setup step that failed.
func stepError(step string, err error) error {
	return fmt.Errorf("%s: %w", step, err)
}

func sendReport(w io.Writer, stubs []string, err error) error {
	rep := Report{Stubs: stubs}
	if rep.Stubs == nil {
		rep.Stubs = []string{}
	}
	if err != nil {
		rep.Error = err.Error()
		var errno syscall.Errno
		if errors.As(err, &errno) {
			rep.Errno = int(errno)
		}
	}
	_, werr := w.Write(MarshalReport(&rep))
	return werr
}

// sandbox is the init's state.
type sandbox struct {
	spec    Config
	rootDir string // where root is mounted
	root    *rootfs.Root
	user    passwd.User
	path    string // the resolved Args[0]
}

// setup does everything from making / private to dropping privileges, in
// that order; on success only execve remains.
func (s *sandbox) setup() error {
	// First: /sys, mounted below, shows the network devices of the
	// namespace it is mounted in.
	if err := joinSharedNetwork(s.spec.Net); err != nil {
		return stepError("joining the network", err)
	}
	spec := s.spec
	unix.Umask(0o022)
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return stepError("making / private", &os.PathError{Op: "mount (flags MS_REC|MS_PRIVATE)", Path: "/", Err: err})
	}
	// The mountpoint stays behind, empty, in the host's mount namespace;
	// tolerate it for callers that reuse a StateDir.
	if err := os.Mkdir(s.rootDir, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return stepError("creating rootfs mountpoint", err)
	}
	if err := s.root.Mount(spec.Rootfs); err != nil {
		return stepError("mounting rootfs", err)
	}
	if err := s.root.Setup(); err != nil {
		return err
	}
	if err := s.root.Bind(spec.Mounts); err != nil {
		return err
	}
	if err := s.root.RunMounts(spec.RunMounts); err != nil {
		return err
	}
	if err := setupNetwork(s.spec.Net); err != nil {
		return stepError("setting up network", err)
	}
	cwd := spec.Cwd
	if cwd == "" {
		cwd = "/"
	}
	cwd = filepath.Join("/", cwd)
	if err := s.root.MkdirCwd(cwd); err != nil {
		return stepError("creating working directory "+cwd, err)
	}
	if err := s.resolveUser(); err != nil {
		return stepError("resolving user", err)
	}
	if err := s.root.Pivot(); err != nil {
		return stepError("pivoting to rootfs", err)
	}
	if err := unix.Sethostname([]byte(spec.Hostname)); err != nil {
		return stepError("setting hostname", os.NewSyscallError("sethostname", err))
	}
	// As root, so that a cwd the user may not search still works.
	if err := unix.Chdir(cwd); err != nil {
		return stepError("changing to working directory", &os.PathError{Op: "chdir", Path: cwd, Err: err})
	}
	path, err := lookPath(spec.Args[0], spec.Env)
	if err != nil {
		return err
	}
	s.path = path
	if err := s.dropPrivileges(); err != nil {
		return stepError("dropping privileges", err)
	}
	return nil
}

func (s *sandbox) resolveUser() error {
	pwFile, err := s.root.OpenInRoot("/etc/passwd")
	if err != nil {
		return err
	}
	group, err := s.root.OpenInRoot("/etc/group")
	if err != nil {
		return err
	}
	var pr, gr io.Reader // nil interfaces when the files are missing
	if pwFile != nil {
		defer pwFile.Close()
		pr = pwFile
	}
	if group != nil {
		defer group.Close()
		gr = group
	}
	s.user, err = passwd.ResolveUser(s.spec.User, pr, gr)
	if err != nil {
		return err
	}
	// runc (and so BuildKit and Docker) sets HOME from /etc/passwd when
	// the environment has none.
	if !slices.ContainsFunc(s.spec.Env, func(kv string) bool { return strings.HasPrefix(kv, "HOME=") }) {
		s.spec.Env = append(slices.Clone(s.spec.Env), "HOME="+s.user.Home)
	}
	return nil
}

// dropPrivileges switches to the resolved user with Docker's capability
// sets. Capability sets and (with raw syscalls) ids are per thread; this is
// the thread that execs, and the other threads die at execve.
func (s *sandbox) dropPrivileges() error {
	// First, while this thread has CAP_SYS_ADMIN (see installSeccomp).
	if err := installSeccomp(s.spec.Seccomp); err != nil {
		return err
	}
	if !s.spec.Insecure {
		if err := dropBoundingSet(); err != nil {
			return err
		}
	}
	if err := dropNetRawBounding(s.spec.Net); err != nil {
		return err
	}
	if err := setIDs(s.user); err != nil {
		return err
	}
	setCapSets := setCaps
	if s.spec.Insecure {
		setCapSets = setAllCaps
	}
	if err := setCapSets(s.user.UID == 0, s.spec.Net.DropNetRaw); err != nil {
		return err
	}
	// The kernel clears the parent-death signal when credentials change.
	if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(unix.SIGKILL), 0, 0, 0); err != nil {
		return os.NewSyscallError("prctl(PR_SET_PDEATHSIG)", err)
	}
	return nil
}

// lookPath finds file like a shell does, in the PATH of env (DefaultPath
// if env has none), in the new root.
func lookPath(file string, env []string) (string, error) {
	if strings.Contains(file, "/") {
		return file, nil
	}
	notFound := &os.PathError{Op: "exec", Path: file, Err: errors.New("executable file not found in $PATH")}
	if file == "" {
		return "", notFound
	}
	path := DefaultPath
	for _, kv := range env {
		if v, ok := strings.CutPrefix(kv, "PATH="); ok {
			path = v // the first one wins, as with getenv(3)
			break
		}
	}
	for _, dir := range filepath.SplitList(path) {
		if dir == "" {
			dir = "."
		}
		p := filepath.Join(dir, file)
		if fi, err := os.Stat(p); err == nil && fi.Mode().IsRegular() && fi.Mode()&0o111 != 0 {
			if !filepath.IsAbs(p) && !strings.HasPrefix(p, ".") {
				p = "./" + p
			}
			return p, nil
		}
	}
	return "", notFound
}
