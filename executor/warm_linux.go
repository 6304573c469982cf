package executor

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"sync/atomic"

	"github.com/builder-dev/builder/executor/cgroup"
	"github.com/builder-dev/builder/executor/mountpoints"
	"github.com/builder-dev/builder/executor/seccompprog"
	"github.com/builder-dev/builder/executor/warm"
)

// warmInits holds the init of the next sandbox, started while the current
// one runs (package warm): a build's serial RUN steps then pay neither the
// execve of the init nor its runtime's start-up. What starts it is the
// same for every sandbox of one key (warmKey); what differs (rootfs,
// command, user, ...) is in the config the init waits for.
var warmInits warm.Pool

// warmKey names how l's init is started, or is "" when an init started
// ahead cannot serve it: a network helper of its own is started on the
// init's new namespace, stdin and a terminal are set up at start, and a
// single pipe carries stdout and stderr.
func (l *launch) warmKey() string {
	if l.nw.helper != nil || l.spec.Stdin != nil || l.spec.Terminal || !warm.SameWriter(l.spec.Stdout, l.spec.Stderr) {
		return ""
	}
	return fmt.Sprintf("%s %#x %p %+v", initPath(), l.nw.clone, l.nw.shared, l.spec.Resources)
}

// takeWarm makes l use the init started ahead for key, if there is one.
func (l *launch) takeWarm(ctx context.Context, key string) bool {
	p := warmInits.Take(key)
	if p == nil {
		return false
	}
	l.cmd, l.warm = p.Cmd, true
	l.specW, l.reportR, l.outR = p.Files[0], p.Files[1], p.Files[2]
	l.cg, _ = p.Data.(*cgroup.Group)
	l.cancelCG.Store(l.cg)
	// What exec.CommandContext's Cancel does for an init started here.
	stop := context.AfterFunc(ctx, func() { killSandbox(l.cancelCG.Load(), l.cmd.Process) })
	l.undo = append(l.undo, func() { stop() })
	return true
}

// startWarm starts, in the background, the init of the next sandbox
// started like l's, and makes its cgroup and joins it, unless DiscardWarm
// ran since warmInits.Gen returned gen.
func (l *launch) startWarm(gen uint64, key string) {
	clone, shared, limits := l.nw.clone, l.nw.shared, l.spec.Resources
	warmInits.Start(gen, key, func() (*exec.Cmd, []*os.File, []*os.File, error) {
		p, err := warm.Pipes(3) // specR, specW, reportR, reportW, outR, outW
		if err != nil {
			return nil, nil, nil, err
		}
		cmd := initCommand(exec.Command(initPath()), clone, p[0], p[3], shared)
		cmd.Stdout, cmd.Stderr = p[5], p[5]
		return cmd, []*os.File{p[1], p[2], p[4]}, []*os.File{p[0], p[3], p[5]}, nil
	}, func(p *warm.Proc) error {
		cg, err := cgroup.New(limits)
		if err != nil || cg == nil {
			return err
		}
		p.Data, p.Undo = cg, func() { cg.Delete() }
		return cg.Add(p.Cmd.Process.Pid)
	})
}

// DiscardWarm ends the inits started ahead, if any, and removes their
// cgroups; a start ahead asked for before it (Prepare's, a Run's) keeps
// nothing. Call it when no more sandboxes run here.
func DiscardWarm() { warmInits.Discard() }

// Building marks a build under way until done is called: the inits
// started ahead end (DiscardWarm) with the last build under way, not idle
// with their cgroups in a process that keeps its state (a test, a server).
func Building() (done func()) { return warmInits.Use() }

// Prepare does in the background what a Run of a sandbox like spec (its
// Network, Resources, ElideSync and Insecure) does first, while the steps
// before it run (a base image's pull): it starts the shared network,
// compiles the seccomp program, makes the layer of mountpoints and starts
// the init ahead. Run meets, and reports, whatever failed here.
func Prepare(spec Spec) {
	if spec.Network == NetworkDefault {
		PrepareNetwork()
	}
	if !preparing.CompareAndSwap(false, true) {
		return // the steps of a build ask together; once is enough
	}
	// A build that ends before the init is started (it failed, its
	// steps were cached) discards it: DiscardWarm ends this generation.
	gen := warmInits.Gen()
	go func() {
		defer preparing.Store(false)
		if !spec.Insecure {
			seccompprog.For(spec.ElideSync)
		}
		mountpoints.Prepare()
		if nw, err := planNetwork(context.Background(), spec); err == nil {
			l := &launch{spec: spec, nw: nw}
			if key := l.warmKey(); key != "" {
				l.startWarm(gen, key)
			}
		}
	}()
}

var preparing atomic.Bool
