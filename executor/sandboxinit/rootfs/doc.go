// Package rootfs builds a sandbox's root filesystem inside the sandbox
// init's mount namespace: it mounts the image's layers, /proc, /dev, /sys,
// /etc/hosts and /etc/resolv.conf, Docker's masks, bind and RUN --mount
// mounts and secrets, then pivots into it.
//
// Every mount target is opened inside the rootfs without following a
// symlink out of it and mounted by file descriptor (resolve_linux.go); the
// rootfs and every writable mount are nodev, so only the host's standard
// device nodes bound into /dev open; secrets live on a tmpfs of the
// sandbox's own mount namespace (secrets_linux.go).
package rootfs
