package llb

// Mount types of ExecMount.Type, as RUN --mount names them.
const (
	MountBind   = "bind"
	MountCache  = "cache"
	MountTmpfs  = "tmpfs"
	MountSecret = "secret"
	MountSSH    = "ssh"
)

// Cache mount sharing modes (ExecMount.Sharing).
const (
	SharingShared  = "shared"
	SharingPrivate = "private"
	SharingLocked  = "locked"
)

// Network modes (ExecOp.Network). "" is the default network: a private
// network namespace with outbound access through a user-mode network stack
// (see executor.NetworkDefault).
const (
	NetworkHost = "host"
	NetworkNone = "none"
)

// SecurityInsecure is ExecOp.Security for RUN --security=insecure.
const SecurityInsecure = "insecure"

// ExecMount is one RUN --mount of an ExecOp. It is part of the op's
// encoding, so it holds only names: a secret's or an SSH agent's id, never
// the secret or the socket, which the build supplies when the op runs.
type ExecMount struct {
	// Type is one of MountBind, MountCache, MountTmpfs, MountSecret and
	// MountSSH.
	Type string `json:"type"`
	// Target is the absolute path in the sandbox. An env-only secret has
	// none.
	Target string `json:"target,omitempty"`
	// Input is the index in the vertex's inputs of the file tree a bind
	// or cache mount takes its files from (`from=`, for a bind the build
	// context by default); 0, the rootfs, means none: a cache then starts
	// empty.
	Input int `json:"input,omitempty"`
	// Source is the path inside Input (bind, cache).
	Source string `json:"source,omitempty"`
	// Readonly mounts read-only. A writable bind mount's writes are
	// discarded after the run.
	Readonly bool `json:"readonly,omitempty"`
	// ID names a cache (default: Target), a secret or an SSH agent
	// ("default").
	ID string `json:"id,omitempty"`
	// Sharing is a cache's sharing mode; SharingShared when empty.
	Sharing string `json:"sharing,omitempty"`
	// Env, for a secret, is an environment variable of the process that
	// gets the secret's value.
	Env string `json:"env,omitempty"`
	// Required makes a missing secret or SSH agent an error; otherwise
	// the mount is left out.
	Required bool `json:"required,omitempty"`
	// Mode, UID and GID set the permissions of a cache directory when it
	// is created, of a secret file, or of an SSH agent socket.
	Mode *uint32 `json:"mode,omitempty"`
	UID  *uint32 `json:"uid,omitempty"`
	GID  *uint32 `json:"gid,omitempty"`
	// Size limits a tmpfs, in bytes; 0 is the kernel's default.
	Size int64 `json:"size,omitempty"`
}
