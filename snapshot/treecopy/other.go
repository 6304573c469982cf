//go:build !linux

package treecopy

import (
	"errors"
	"runtime"
)

var errUnsupported = errors.New("copying layer trees is not supported on " + runtime.GOOS)

// Merge merges layer directories into dst; it needs Linux.
func Merge(dst string, layers []string, userXattr bool) error { return errUnsupported }

// Dir copies the directory tree src to dst; it needs Linux.
func Dir(dst, src string) error { return errUnsupported }

// Diff writes the difference between two trees as a layer; it needs Linux.
func Diff(upper, lower, out, marker string, userXattr bool) error { return errUnsupported }
