// Command rsspeak reports the peak resident set size of the processes
// running given executables, for bench/peers/run.sh. It polls Linux's /proc
// until SIGINT or SIGTERM, then prints one line per executable: its path and
// the largest VmHWM (peak RSS) in KiB that any one process of it reached.
// At start it resets the peak of processes already running (a long-lived
// daemon such as buildkitd), so the figure covers only the polling period.
//
//	rsspeak /usr/bin/buildah /tmp/bk/buildkitd ...
package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: rsspeak EXECUTABLE...")
		os.Exit(2)
	}
	want := map[string]bool{}
	for _, a := range os.Args[1:] {
		p, err := filepath.EvalSymlinks(a)
		if err != nil {
			fmt.Fprintf(os.Stderr, "rsspeak: %v\n", err)
			os.Exit(1)
		}
		want[p] = true
	}
	peak := map[string]int64{}
	// Writing 5 to clear_refs resets VmHWM to the current RSS.
	poll(want, func(pid, exe string) {
		_ = os.WriteFile(filepath.Join("/proc", pid, "clear_refs"), []byte("5"), 0)
	})
	stop := make(chan os.Signal, 1)
	signal.Notify(stop, syscall.SIGINT, syscall.SIGTERM)
	// 20 ms polls miss only growth in a process's last 20 ms.
	tick := time.NewTicker(20 * time.Millisecond)
	for {
		select {
		case <-stop:
			for _, a := range os.Args[1:] {
				p, _ := filepath.EvalSymlinks(a)
				fmt.Printf("%s %d\n", a, peak[p])
			}
			return
		case <-tick.C:
			poll(want, func(pid, exe string) {
				if kb := hwm(pid); kb > peak[exe] {
					peak[exe] = kb
				}
			})
		}
	}
}

// poll calls f for each process whose executable is in want.
func poll(want map[string]bool, f func(pid, exe string)) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		fmt.Fprintf(os.Stderr, "rsspeak: %v\n", err)
		os.Exit(1)
	}
	for _, e := range ents {
		if _, err := strconv.Atoi(e.Name()); err != nil {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err == nil && want[exe] {
			f(e.Name(), exe)
		}
	}
}

// hwm returns a process's VmHWM in KiB, or 0 if it has gone.
func hwm(pid string) int64 {
	b, err := os.ReadFile(filepath.Join("/proc", pid, "status"))
	if err != nil {
		return 0
	}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		if f := bytes.Fields(sc.Bytes()); len(f) >= 2 && string(f[0]) == "VmHWM:" {
			n, _ := strconv.ParseInt(string(f[1]), 10, 64)
			return n
		}
	}
	return 0
}
