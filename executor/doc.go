// Package executor runs one process in a sandbox: a Dockerfile RUN step or
// `builder run IMAGE cmd`. It needs no runtime binary. Run starts the
// sandbox init (package sandboxinit) in new mount, pid, UTS and IPC
// namespaces: a small binary of that package alone (cmd/builder-init, see
// UseInitBinary) or else the running binary again (/proc/self/exe). The
// parent compiles the seccomp filter, makes the cgroup and starts the
// network helper; the init mounts the rootfs and /proc, /dev, /sys,
// /etc/hosts and /etc/resolv.conf, masks /proc paths as Docker does,
// pivots into the rootfs, drops to the requested user with Docker's default
// capability set, and execs the user process, which becomes PID 1 of the
// sandbox's pid namespace.
//
// Every mount target is opened inside the rootfs without following a
// symlink out of it and mounted by file descriptor (package rootfs); the
// rootfs and every writable mount are nodev, so only the host's standard
// device nodes bound into /dev open; secrets live on a tmpfs of the
// sandbox's own mount namespace.
//
// By default the sandbox also has a network namespace of its own, which a
// user-mode network stack (slirp4netns or pasta, started by Run beside the
// init) connects to the outside; see NetworkDefault.
//
// Every program that calls Run must call Init first thing in main (and in
// TestMain of packages whose tests run sandboxes): in the re-executed copy,
// Init is the sandbox init and never returns.
//
// Sandboxes need Linux; elsewhere Run returns an error naming the OS.
package executor
