//go:build !linux

package platform

import (
	"fmt"
	"runtime"
)

// ReadEmulator fails: binfmt_misc is Linux's.
func ReadEmulator(dir, name string) (Emulator, error) {
	return Emulator{Name: name}, fmt.Errorf("binfmt_misc emulators are not supported on %s", runtime.GOOS)
}
