package cgroup

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/containerd/cgroups/v3"
	"golang.org/x/sys/unix"
)

// RemoveStale removes the cgroups of builder processes that are gone, as
// the first New of every process does; for a process that made groups
// itself and may have had a child builder killed since (tests).
func RemoveStale() { removeStale() }

// removeStale removes the cgroups beneath this process's own that a
// builder process which no longer exists made (it was SIGKILLed before it
// could remove them). Those of live builders, this one included, are left
// alone, and so is one that still holds processes: the sandbox of a killed
// builder dies with it (Pdeathsig, then its pid namespace), so a stale
// group is empty, and one that is not may belong to a builder in another
// pid namespace whose pid only looks dead from here. The kernel refuses
// to remove a cgroup with processes, so rmdir alone is that check. It is
// best effort: what it cannot remove now, the next builder tries again.
func removeStale() {
	var dirs []string
	if cgroups.Mode() == cgroups.Unified {
		own, err := v2OwnPath()
		if err != nil {
			return
		}
		for _, name := range staleNames() {
			dirs = append(dirs, filepath.Join(unifiedMount, own, name))
		}
	} else if v1Init() == nil {
		for _, name := range staleNames() {
			for _, d := range v1Dirs(name) {
				dirs = append(dirs, d)
			}
		}
	}
	for _, d := range dirs {
		unix.Rmdir(d)
	}
}

// staleNames lists the builder cgroups beneath this process's own whose
// maker is gone, from every hierarchy builder uses.
func staleNames() []string {
	var dirs []string
	if cgroups.Mode() == cgroups.Unified {
		if own, err := v2OwnPath(); err == nil {
			dirs = append(dirs, filepath.Join(unifiedMount, own))
			// An empty leaf (see moveToLeaf) of builders that ended.
			unix.Rmdir(filepath.Join(unifiedMount, own, leafName))
		}
	} else if v1Init() == nil {
		for _, d := range v1Dirs("") {
			dirs = append(dirs, d)
		}
	}
	seen := map[string]bool{}
	var names []string
	for _, d := range dirs {
		entries, _ := os.ReadDir(d)
		for _, e := range entries {
			if e.IsDir() && !seen[e.Name()] && makerGone(e.Name()) {
				seen[e.Name()] = true
				names = append(names, e.Name())
			}
		}
	}
	return names
}

// makerGone says whether name is a builder cgroup ("builder-PID-N") whose
// maker PID no longer runs.
func makerGone(name string) bool {
	rest, ok := strings.CutPrefix(name, namePrefix)
	if !ok {
		return false
	}
	pidStr, _, ok := strings.Cut(rest, "-")
	pid, err := strconv.Atoi(pidStr)
	if !ok || err != nil || pid <= 0 || pid == os.Getpid() {
		return false
	}
	return errors.Is(unix.Kill(pid, 0), unix.ESRCH)
}
