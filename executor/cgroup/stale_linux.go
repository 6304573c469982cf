package cgroup

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/containerd/cgroups/v3"
	"github.com/containerd/cgroups/v3/cgroup2"
	"golang.org/x/sys/unix"
)

// removeStale removes the cgroups beneath this process's own that a
// builder process which no longer exists made (it was SIGKILLed before it
// could remove them), killing what still runs in them. Those of live
// builders, this one included, are left alone. It is best effort: a cgroup
// it cannot remove now is tried again by the next builder.
func removeStale() {
	for _, name := range staleNames() {
		var g *Group
		if cgroups.Mode() == cgroups.Unified {
			own, err := v2OwnPath()
			if err != nil {
				return
			}
			m, err := cgroup2.Load(filepath.Join(own, name), cgroup2.WithMountpoint(unifiedMount))
			if err != nil {
				continue
			}
			g = &Group{Name: name, v2: &v2Group{m: m, dir: filepath.Join(unifiedMount, own, name)}}
		} else {
			v1g, err := loadV1(name)
			if err != nil {
				continue
			}
			g = &Group{Name: name, v1: v1g}
		}
		g.Kill()
		g.Delete()
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
