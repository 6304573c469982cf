// Package mount is snapshot's Mount (a filesystem mount described as
// data) and the code that mounts one. It is a leaf, apart from package
// snapshot, because the sandbox init mounts a step's rootfs: the init is a
// binary of its own whose start-up is paid at every RUN step, and package
// snapshot would bring it archive/tar, crypto and compression (their code
// and package initialisation).
package mount

import (
	"errors"
	"fmt"
)

// ErrDataTooLong is returned (wrapped in an *Error on Linux) when a
// mount's options do not fit in the one page the kernel accepts.
var ErrDataTooLong = errors.New("mount data too long")

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

// Error says which mount failed, with everything that was passed to mount(2).
type Error struct {
	Op     string
	Source string
	Target string
	Type   string
	Flags  uintptr
	Data   string
	Err    error
}

func (e *Error) Error() string {
	data := e.Data
	if len(data) > 600 {
		// An overlay of many layers: the first and last options say enough.
		data = data[:300] + fmt.Sprintf(" ... (%d bytes) ... ", len(data)-600) + data[len(data)-300:]
	}
	return fmt.Sprintf("%s %s on %s (type %s, flags %#x, data %q): %v", e.Op, e.Source, e.Target, e.Type, e.Flags, data, e.Err)
}

func (e *Error) Unwrap() error { return e.Err }
