//go:build !linux

package snapshot

import "context"

// ProbeOverlay checks that overlay layers work on the filesystem of dir;
// it needs Linux.
func ProbeOverlay(context.Context, string, bool) error { return errUnsupported }
