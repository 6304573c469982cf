//go:build !linux

package executor

import (
	"context"
	"errors"
	"runtime"
)

// Run is not supported on this OS; it always returns an error.
func Run(ctx context.Context, spec Spec) error {
	return errors.New("executor: running sandboxed processes is not supported on " + runtime.GOOS)
}

// Init returns immediately: a sandbox init can only exist on Linux.
func Init() {}

// NetworkWarning says that RUN steps cannot run here at all.
func NetworkWarning() string {
	return "sandboxed RUN steps are not supported on " + runtime.GOOS
}

// PrepareNetwork does nothing: there is no network to prepare here.
func PrepareNetwork() {}

// DiscardWarm does nothing: no sandbox init is started here.
func DiscardWarm() {}

// Prepare does nothing: no sandbox runs here.
func Prepare(spec Spec) {}

// Building does nothing: no sandbox init is started here.
func Building() (done func()) { return func() {} }
