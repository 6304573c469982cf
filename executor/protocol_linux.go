package executor

// The parent (Run) and the sandbox init (Init, in a re-executed copy of
// this binary) talk over two pipes, passed as extra files:
//
//	fd 3, specFD:   parent -> init, the Spec as JSON, the bytes of its
//	                secret mounts (never in the JSON), then EOF
//	fd 4, reportFD: init -> parent, JSON reports, close-on-exec in the init
//	fd 5, netFD:    parent -> init, only with a network helper: a 0 byte when
//	                the helper configured the sandbox's interface, or an
//	                error message, then EOF (see network_linux.go)
//
// The init is started with initEnv set in its environment, which is how
// Init recognizes it; the user process never sees that variable.
//
//	Parent (Run)                                  Init (pid 1 in new ns)
//	-----------------------------------------     ----------------------------------
//	clone(NEWNS|NEWPID|NEWUTS|NEWIPC
//	  [|NEWNET unless the host's network]),
//	  exec /proc/self/exe ------------------------> Init(): sees initEnv, locks the
//	                                                main thread
//	start slirp4netns/pasta on the init's netns
//	write Spec JSON, close -- [specFD] -----------> read Spec until EOF
//	                                                make / private, mount rootfs,
//	                                                /proc /dev /sys /etc/hosts ...,
//	                                                Mounts, RunMounts, lo up,
//	                                                masks, cwd, user, pivot_root,
//	                                                hostname, caps, setuid, PATH lookup
//	helper ready: 0 byte -- [netFD] --------------> wait for the network
//	                        <-- [reportFD] -------- report{Stubs, Error}
//	                                                  Error set: exit(1)
//	                                                  Error empty: execve(user process)
//	                        <-- [reportFD] -------- report{Error} only if execve fails
//	read reports until EOF                          (EOF: execve closed reportFD)
//	  no report at all: the init died -> error
//	  Error in any report -> *SetupError
//	wait4(init) -> nil, *ExitError
//	remove reported stubs from UpperDir
//
// Stubs are reported even when setup fails, so the parent can clean up
// whatever the init created before it failed.
const (
	specFD   = 3
	reportFD = 4
	initEnv  = "_BUILDER_EXECUTOR_INIT"
	// initEnvValue versions the protocol: a binary never talks to a
	// different build of itself, but a stray variable must not match.
	initEnvValue = "v1"
)

// report is what the init writes on reportFD, one JSON object per write.
type report struct {
	// Stubs are the rootfs paths, relative to the rootfs root, that the
	// init created as mountpoints, in creation order.
	Stubs []string `json:"stubs,omitempty"`
	// Error is a setup failure, naming the step; empty on success.
	Error string `json:"error,omitempty"`
	// Errno is the errno underneath Error, if any.
	Errno int `json:"errno,omitempty"`
}

// initConfig is what the parent sends on specFD: the Spec, and what the
// parent prepared for the init.
type initConfig struct {
	Spec
	// Seccomp is the encoded seccomp program (seccomp.Encode); empty only
	// for an insecure sandbox.
	Seccomp []byte `json:"seccomp,omitempty"`
	// Net is the network the parent's helper gives the sandbox.
	Net initNet `json:"net"`
}
