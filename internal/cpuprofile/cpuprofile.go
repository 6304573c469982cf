// Package cpuprofile writes a CPU profile of a whole command when
// BUILDER_CPUPROFILE names a file (go tool pprof reads it): the benchmarks
// in bench/peers use it to see where a build's time goes without a test
// harness around it.
package cpuprofile

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// Env names the file to write the profile to.
const Env = "BUILDER_CPUPROFILE"

// Start starts the profile Env asks for and returns what stops and writes
// it; it does nothing when the variable is unset.
func Start() (stop func()) {
	path := os.Getenv(Env)
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err == nil {
		if err = pprof.StartCPUProfile(f); err != nil {
			f.Close()
		}
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "WARNING: %s: %v\n", Env, err)
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}
