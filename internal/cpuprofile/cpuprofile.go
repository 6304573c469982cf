// Package cpuprofile writes a CPU profile of a whole command when
// BUILDER_CPUPROFILE names a file, and a heap profile at its end when
// BUILDER_MEMPROFILE does (go tool pprof reads both): the benchmarks in
// bench/peers use them to see where a build's time and memory go without a
// test harness around it.
package cpuprofile

import (
	"fmt"
	"os"
	"runtime"
	"runtime/pprof"
)

// Env names the file to write the CPU profile to.
const Env = "BUILDER_CPUPROFILE"

// MemEnv names the file to write the heap profile to when the command
// ends: every allocation sampled over the whole run (pprof's alloc_space
// and alloc_objects), and what was still live at the last collection.
const MemEnv = "BUILDER_MEMPROFILE"

// Start starts the profiles the environment asks for and returns what
// stops and writes them; it does nothing when neither variable is set.
func Start() (stop func()) {
	stopCPU := startCPU()
	mem := os.Getenv(MemEnv)
	if mem == "" {
		return stopCPU
	}
	// One sample per 64 KiB allocated rather than 512 KiB: a build's
	// allocations are few and large (buffers), and this sees the middling ones.
	runtime.MemProfileRate = 64 << 10
	return func() {
		stopCPU()
		if err := writeHeap(mem); err != nil {
			fmt.Fprintf(os.Stderr, "WARNING: %s: %v\n", MemEnv, err)
		}
	}
}

func startCPU() (stop func()) {
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

func writeHeap(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	// The live figures are those of the last collection: collect now so
	// they are the end's.
	runtime.GC()
	if err := pprof.Lookup("heap").WriteTo(f, 0); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}
