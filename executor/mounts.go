package executor

import "github.com/builder-dev/builder/executor/sandboxinit/rootfs"

// NetworkNone is Spec.Network for a sandbox with a network namespace of its
// own, in which only the loopback interface is up.
const NetworkNone = "none"

// Mount types (Mount.Type); see package rootfs, which mounts them in the init.
const (
	MountBind   = rootfs.MountBind
	MountTmpfs  = rootfs.MountTmpfs
	MountLayers = rootfs.MountLayers
	MountSecret = rootfs.MountSecret
)

// Mount is one filesystem mounted into the sandbox (RUN --mount); the type
// is the init's (package rootfs), which receives it as it is.
type Mount = rootfs.Mount

// BindMount binds a host path into the sandbox.
type BindMount = rootfs.BindMount
