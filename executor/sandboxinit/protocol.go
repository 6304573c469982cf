package sandboxinit

import (
	"github.com/builder-dev/builder/executor/sandboxinit/rootfs"
	"github.com/builder-dev/builder/snapshot/mount"
)

// The parent (executor.Run) and the sandbox init (Main, in cmd/builder-init
// or a re-executed copy of the calling binary) talk over two pipes, passed
// as extra files:
//
//	fd 3, SpecFD:   parent -> init, the Config's frame (wire.go), the
//	                seccomp program and the bytes of its secret mounts
//	                (never in the frame), then EOF
//	fd 4, ReportFD: init -> parent, Report frames, close-on-exec in the init
//	fd 5, NetFD:    parent -> init, only with a network helper: a 0 byte when
//	                the helper configured the sandbox's interface, or an
//	                error message, then EOF (see network_linux.go)
//
// The init is started with Env set in its environment, which is how
// Main recognizes it; the user process never sees that variable.
//
//	Parent (Run)                                  Init (pid 1 in new ns)
//	-----------------------------------------     ----------------------------------
//	clone(NEWNS|NEWPID|NEWUTS|NEWIPC
//	  [|NEWNET unless the host's network]),
//	  exec /proc/self/exe ------------------------> Main(): sees Env   , locks the
//	                                                main thread
//	start slirp4netns/pasta on the init's netns
//	write Config frame, close - [SpecFD] -----------> read Config until EOF
//	                                                make / private, mount rootfs,
//	                                                /proc /dev /sys /etc/hosts ...,
//	                                                Mounts, RunMounts, lo up,
//	                                                masks, cwd, user, pivot_root,
//	                                                hostname, caps, setuid, PATH lookup
//	helper ready: 0 byte -- [NetFD] --------------> wait for the network
//	                        <-- [ReportFD] -------- Report{Stubs, Error}
//	                                                  Error set: exit(1)
//	                                                  Error empty: execve(user process)
//	                        <-- [ReportFD] -------- Report{Error} only if execve fails
//	read reports until EOF                          (EOF: execve closed reportFD)
//	  no report at all: the init died -> error
//	  Error in any report -> *SetupError
//	wait4(init) -> nil, *ExitError
//	remove reported stubs from UpperDir
//
// Stubs are reported even when setup fails, so the parent can clean up
// whatever the init created before it failed.
const (
	SpecFD   = 3
	ReportFD = 4
	// NetFD is the network helper's readiness pipe, or the shared network
	// namespace to join (see Net).
	NetFD = 5
	// Env names the variable that makes Main the sandbox init (EnvInit)
	// or the holder of a shared network namespace (EnvHold); the user
	// process never sees it.
	Env = "_BUILDER_EXECUTOR_INIT"
	// EnvInit versions the protocol: a binary never talks to a different
	// build of itself, but a stray variable must not match.
	EnvInit = "v1"
	// EnvHold makes Main hold a network namespace until its stdin closes.
	EnvHold = "netns-holder-v1"
)

// maxSeccompSize is the largest program the kernel takes: 4096
// instructions of 8 bytes.
const maxSeccompSize = 4096 * 8

// DefaultPath is used to look up Args[0] when Env has no PATH. It is not
// added to the process environment.
const DefaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Config is what the parent sends on SpecFD: what to run and everything the
// parent prepared for it. New sandbox settings that the init applies go
// here (and in executor.Spec, which executor.Run copies them from).
type Config struct {
	// Rootfs is mounted, in order, at StateDir/rootfs.
	Rootfs   []mount.Mount `json:"rootfs"`
	Args     []string      `json:"args"`
	Env      []string      `json:"env"`
	Cwd      string        `json:"cwd,omitempty"`
	User     string        `json:"user,omitempty"`
	Hostname string        `json:"hostname"`
	// Mounts, then RunMounts, are mounted in order after the sandbox's
	// own; see executor.Spec.
	Mounts    []rootfs.BindMount `json:"mounts,omitempty"`
	RunMounts []rootfs.Mount     `json:"runMounts,omitempty"`
	Insecure  bool               `json:"insecure,omitempty"`
	// StateDir holds the rootfs mountpoint and the hosts and resolv.conf
	// files the init binds at /etc.
	StateDir string `json:"stateDir"`
	// Seccomp is the encoded seccomp program (the kernel's struct
	// sock_filter array, see internal/seccomp.Encode), compiled by the
	// parent; empty only for an insecure sandbox. It follows the frame as
	// SeccompSize raw bytes (see readPayload).
	Seccomp     []byte `json:"-"`
	SeccompSize int    `json:"seccompSize,omitempty"`
	// Net is the network the parent's helper gives the sandbox.
	Net Net `json:"net"`
	// ShmSize is the size of /dev/shm in bytes; 0 is 64 MiB, as Docker.
	ShmSize int64 `json:"shmSize,omitempty"`
	// Ulimits are set on the init before it sets up the sandbox; execve
	// keeps them.
	Ulimits []Ulimit `json:"ulimits,omitempty"`
}

// Ulimit is one resource limit, named as docker's --ulimit names it
// (nofile, nproc, core, ...); -1 is unlimited.
type Ulimit struct {
	Name string `json:"name"`
	Soft int64  `json:"soft"`
	Hard int64  `json:"hard"`
}

// Report is what the init writes on ReportFD, one frame per write.
type Report struct {
	// Stubs are the rootfs paths, relative to the rootfs root, that the
	// init created as mountpoints, in creation order.
	Stubs []string `json:"stubs,omitempty"`
	// Error is a setup failure, naming the step; empty on success.
	Error string `json:"error,omitempty"`
	// Errno is the errno underneath Error, if any.
	Errno int `json:"errno,omitempty"`
}

// Net is what the init needs to know of the network.
type Net struct {
	// Private: the sandbox has a network namespace of its own, whose lo
	// the init brings up.
	Private bool `json:"private,omitempty"`
	// Wait for the helper on NetFD before execve.
	Wait bool `json:"wait,omitempty"`
	// Shared: NetFD is the namespace shared by the parent's sandboxes,
	// to join.
	Shared bool `json:"shared,omitempty"`
	// DropNetRaw removes CAP_NET_RAW: the host's network without a
	// namespace must not give raw sockets on the host's interfaces.
	DropNetRaw bool `json:"dropNetRaw,omitempty"`
}
