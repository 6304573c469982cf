package executor

import (
	"time"

	"github.com/builder-dev/builder/executor/cgroup"
)

// SharedNetworkState says when the start of the namespace shared through
// helper began (zero if it did not), and whether the start has ended.
func SharedNetworkState(helper string) (began time.Time, done bool) {
	sharedNets.Lock()
	defer sharedNets.Unlock()
	s := sharedNets.nets[helper]
	if s == nil {
		return time.Time{}, false
	}
	select {
	case <-s.done:
		done = true
	default:
	}
	return s.began, done
}

// WarmInitPID is the pid of the init started ahead for the next sandbox,
// or 0.
func WarmInitPID() int {
	if p := warmInits.Kept(); p != nil {
		return p.Cmd.Process.Pid
	}
	return 0
}

// WarmInitCgroups are the names of the cgroups of the inits started ahead
// for the next sandboxes.
func WarmInitCgroups() map[string]bool {
	names := map[string]bool{}
	for _, p := range warmInits.All() {
		if cg, _ := p.Data.(*cgroup.Group); cg != nil {
			names[cg.Name] = true
		}
	}
	return names
}
