package main

import (
	"fmt"
	"os"
	"runtime/pprof"
)

// CPUProfileEnv names a file to write a CPU profile of the whole command
// to (go tool pprof reads it): the benchmarks in bench/peers use it to see
// where a build's time goes without a test harness around it.
const CPUProfileEnv = "BUILDER_CPUPROFILE"

// startCPUProfile starts the profile CPUProfileEnv asks for and returns
// what stops and writes it; it does nothing when the variable is unset.
func startCPUProfile() (stop func()) {
	path := os.Getenv(CPUProfileEnv)
	if path == "" {
		return func() {}
	}
	f, err := os.Create(path)
	if err != nil {
		fmt.Fprintf(os.Stderr, "WARNING: %s: %v\n", CPUProfileEnv, err)
		return func() {}
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		fmt.Fprintf(os.Stderr, "WARNING: %s: %v\n", CPUProfileEnv, err)
		f.Close()
		return func() {}
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}
}
