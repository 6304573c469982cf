//go:build !linux

package archive

import (
	"archive/tar"
	"context"
	"errors"
	"io"
	"runtime"
)

var errUnsupported = errors.New("unpacking archives is not supported on " + runtime.GOOS + " (it needs Linux device nodes and xattrs)")

// Extract unpacks a tar into a directory; it needs Linux.
func Extract(context.Context, string, *tar.Reader, Options) (Result, error) {
	return Result{}, errUnsupported
}

// WriteDiff writes an overlay upper directory as an OCI layer tar; it
// needs Linux.
func WriteDiff(context.Context, string, io.Writer, DiffOptions) error { return errUnsupported }
