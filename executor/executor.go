package executor

import (
	"fmt"
	"io"
	"syscall"
	"time"

	"github.com/builder-dev/builder/executor/cgroup"
	"github.com/builder-dev/builder/executor/initbin"
	"github.com/builder-dev/builder/executor/sandboxinit"
	"github.com/builder-dev/builder/snapshot"
)

// CPUReporter may be implemented by a Spec's Stdout (the solver's step log
// does): once the sandbox is in its cgroup, Run hands it a reader of the
// CPU time the sandbox's processes used so far, so that the solver can
// start more steps while the running ones use none; once they ended, and
// before their cgroup goes, Run hands it another that counts one CPU of
// wall time (the caller's work on the step's result runs in its own
// process). Without a cgroup it is not called.
type CPUReporter interface {
	ReportCPU(used func() time.Duration)
}

// DefaultHostname is the sandbox hostname when Spec.Hostname is empty.
const DefaultHostname = "builder"

// DefaultPath is used to look up Args[0] when Env has no PATH. It is not
// added to the process environment.
const DefaultPath = sandboxinit.DefaultPath

// Spec describes one sandboxed process.
type Spec struct {
	// Rootfs is mounted, in order, at a fresh mountpoint inside the
	// sandbox's own mount namespace; typically one overlay mount.
	Rootfs []snapshot.Mount `json:"rootfs"`
	// UpperDir, when set, is the overlay upper directory of Rootfs. The
	// mountpoints the sandbox had to create in the rootfs (/proc, /dev,
	// /sys, /etc/hosts, /etc/resolv.conf, and missing parents) are removed
	// from it after the run if they are still empty.
	UpperDir string `json:"upperDir,omitempty"`
	// Args is the argv of the process. Args[0] is looked up in the rootfs
	// with the PATH from Env (DefaultPath if none) when it has no slash.
	Args []string `json:"args"`
	// Env is exactly the environment of the process.
	Env []string `json:"env"`
	// Cwd is the working directory, created (0755, owned by root) if
	// missing; "/" when empty.
	Cwd string `json:"cwd,omitempty"`
	// User is "", "user", "uid", "user:group", "uid:gid", ... resolved
	// against the rootfs's /etc/passwd and /etc/group. Empty means root.
	User string `json:"user,omitempty"`
	// Hostname is the sandbox's hostname; DefaultHostname when empty.
	Hostname string `json:"hostname,omitempty"`
	// Mounts are host files or directories bound into the sandbox after
	// its own mounts, in order.
	Mounts []BindMount `json:"mounts,omitempty"`
	// RunMounts are mounted after Mounts, in order: file trees, tmpfs and
	// host paths (RUN --mount). See Mount.
	RunMounts []Mount `json:"runMounts,omitempty"`
	// Network is NetworkDefault (a private network namespace reaching
	// out through a user-mode network stack), NetworkNone or NetworkHost.
	Network string `json:"network,omitempty"`
	// Insecure keeps every capability and leaves /proc and /sys unmasked
	// (RUN --security=insecure).
	Insecure bool `json:"insecure,omitempty"`
	// ElideSync answers the process's fsync, fdatasync, sync_file_range
	// and syncfs with success without running them (seccompprog.For): for
	// a build step, whose layer a syncfs makes durable before a cache
	// record names it. Not for a container a user keeps using.
	ElideSync bool `json:"-"`
	// ExtraHosts are "IP HOST" lines added to the sandbox's /etc/hosts
	// (--add-host).
	ExtraHosts []HostIP `json:"extraHosts,omitempty"`
	// ShmSize is the size of /dev/shm in bytes; 0 is 64 MiB, as Docker.
	ShmSize int64 `json:"shmSize,omitempty"`
	// Ulimits are set on the process before it starts (--ulimit).
	Ulimits []Ulimit `json:"ulimits,omitempty"`
	// Resources are the limits of the sandbox's own cgroup (see
	// resources_linux.go); the zero value has only the default pids limit.
	Resources cgroup.Limits `json:"-"`
	// Usage, when not nil, receives what the sandbox used, read from its
	// cgroup; it stays zero when there was none (rootless without a
	// delegated cgroup).
	Usage *cgroup.Usage `json:"-"`

	// Terminal, with Stdin a terminal (an *os.File), makes the sandbox the
	// terminal's foreground process group while it runs, so that Ctrl-C
	// and job control reach its processes and not this one's. Run gives
	// the terminal back to this process's group afterwards.
	Terminal bool `json:"-"`

	// Stdin, Stdout and Stderr are the process's standard streams; nil
	// means /dev/null.
	Stdin  io.Reader `json:"-"`
	Stdout io.Writer `json:"-"`
	Stderr io.Writer `json:"-"`

	// StateDir is an existing empty scratch directory for this run: it
	// holds the rootfs mountpoint and the hosts and resolv.conf files.
	// The caller removes it after Run returns.
	StateDir string `json:"stateDir"`
}

// HostIP is one /etc/hosts entry of Spec.ExtraHosts.
type HostIP struct {
	Host string `json:"host"`
	IP   string `json:"ip"`
}

// Ulimit is one resource limit (--ulimit); the init sets it.
type Ulimit = sandboxinit.Ulimit

// ExitError reports a process that ran and did not exit 0.
type ExitError struct {
	// Code is the exit code, or 128+Signal when the process was killed.
	Code int
	// Signal is the signal that killed the process, or 0.
	Signal syscall.Signal
}

func (e *ExitError) Error() string {
	if e.Signal != 0 {
		return fmt.Sprintf("killed by signal %d", int(e.Signal))
	}
	// BuildKit's wording, which users grep for.
	return fmt.Sprintf("did not complete successfully: exit code: %d", e.Code)
}

// SetupError reports a sandbox that failed before the process started
// (mounting, resolving the user, finding the executable, exec itself).
type SetupError struct {
	// Msg names the step that failed and its cause, for example
	// "mounting /proc in rootfs: ...".
	Msg string
	// Errno is the underlying errno, if any.
	Errno syscall.Errno
}

func (e *SetupError) Error() string { return "sandbox setup: " + e.Msg }

// Unwrap lets errors.Is match the errno, e.g. errors.Is(err, fs.ErrNotExist).
func (e *SetupError) Unwrap() error {
	if e.Errno == 0 {
		return nil
	}
	return e.Errno
}

// UseInitBinary makes Run start the sandbox init from a small separate
// binary written into dir (see initbin.Use).
var UseInitBinary = initbin.Use

// initPath is the program Run starts.
func initPath() string { return initbin.Path() }
