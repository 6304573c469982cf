// Package sandboxinit is the sandbox init: the side of executor.Run that
// runs inside the new namespaces, as their pid 1. It reads a Config from
// the parent, builds the root filesystem (package rootfs), joins or brings
// up the network, resolves the user, pivots, loads the seccomp filter the
// parent compiled, drops to Docker's capability set and execs the user
// process. protocol.go describes the exchange with the parent.
//
// cmd/builder-init is a main that calls Main and nothing else; this package
// imports neither the seccomp compiler nor the cgroup code, so that binary
// stays small and starts fast.
package sandboxinit
