package rootfs

import snapmount "github.com/builder-dev/builder/snapshot/mount"

// Mount types (Mount.Type).
const (
	// MountBind binds the host path Source.
	MountBind = "bind"
	// MountTmpfs mounts an empty tmpfs of at most Size bytes.
	MountTmpfs = "tmpfs"
	// MountLayers mounts Layers (as Rootfs is mounted) at a scratch
	// mountpoint in StateDir, and binds the path Source inside them.
	MountLayers = "layers"
	// MountSecret makes a read-only file of Data, with the owner UID:GID
	// and permission bits Mode, on a tmpfs that exists only in the
	// sandbox's mount namespace: the bytes never reach a disk, and go when
	// the sandbox does, even if the builder is killed.
	MountSecret = "secret"
)

// Mount is one filesystem mounted into the sandbox at Target (RUN
// --mount). Missing mountpoints are created, and removed from UpperDir
// after the run like the sandbox's own.
type Mount struct {
	Type   string `json:"type"`
	Target string `json:"target"`
	// Source is a host path (MountBind) or a path inside Layers
	// (MountLayers, "" or "/" for all of it).
	Source string            `json:"source,omitempty"`
	Layers []snapmount.Mount `json:"layers,omitempty"`
	// Size limits a tmpfs, in bytes; 0 is the kernel's default. For
	// MountSecret, executor.Run sets it to len(Data).
	Size     int64 `json:"size,omitempty"`
	Readonly bool  `json:"readonly,omitempty"`
	// Data is a MountSecret's content. It is never encoded with the
	// spec (which may be logged); executor.Run sends it to the init
	// after it.
	Data []byte `json:"-"`
	// UID, GID and Mode are a MountSecret file's owner and permission
	// bits.
	UID  int    `json:"uid,omitempty"`
	GID  int    `json:"gid,omitempty"`
	Mode uint32 `json:"mode,omitempty"`
}

// BindMount binds a host path into the sandbox.
type BindMount struct {
	// Source is the host path, a file or a directory.
	Source string `json:"source"`
	// Target is the path in the sandbox; missing mountpoints are created
	// (and removed from the upper dir afterwards, like the sandbox's own).
	Target   string `json:"target"`
	Readonly bool   `json:"readonly,omitempty"`
}
