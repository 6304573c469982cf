// Package snapshot owns layer directories on disk: preparing a snapshot of
// parent layers with an empty layer, committing it, turning a layer
// directory into an OCI layer tar (overlay whiteouts become .wh. entries),
// and applying an OCI layer tar into a directory in overlay format. Two
// Snapshotters share one on-disk layout: overlay mounts, or, where overlayfs
// cannot be mounted, copies (whose engine is snapshot/treecopy). The tar
// conversions themselves are internal/archive's. It is the only package
// that mounts filesystems for layers.
package snapshot

import "errors"

// ErrMountDataTooLong is returned (wrapped in a *MountError on Linux) when
// a mount's options do not fit in the one page the kernel accepts.
var ErrMountDataTooLong = errors.New("mount data too long")

// Mount is one filesystem mount described as data, in the form mount(2)
// takes it. Snapshotters return mounts; executors and copiers mount them.
type Mount struct {
	// Type is the filesystem type: "overlay", "bind", "tmpfs", ...
	Type string `json:"type"`
	// Source is the device or directory; "overlay" for overlay mounts.
	Source string `json:"source"`
	// Options holds both flag options ("ro", "rbind", "nosuid") and
	// filesystem data ("lowerdir=...", "upperdir=...").
	Options []string `json:"options,omitempty"`
}
