package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/builder-dev/builder/executor/sandboxinit"
	"golang.org/x/sys/unix"
)

// The default-network sandboxes of one builder process share one network
// namespace, connected once by the helper, instead of a namespace and a
// helper each: starting slirp4netns and waiting for its interface cost
// about 28 ms a step, joining a namespace costs a setns(2). The namespace
// is held by a small holder process (this binary or the init binary,
// waiting for its stdin to close) that lives as long as builder; the init
// of each sandbox joins it (netFD is then the namespace) before it drops
// its privileges. What is shared is only what the steps of one build could
// see of each other anyway while they run side by side: the namespace has
// no other interface than lo and the helper's tap, and the host stays as
// unreachable as from a namespace of a step's own.
// sharedNets are the starts of the shared namespaces by helper name (a
// failed one is kept until a step has reported it, then the next step
// tries again), and the holders' stdin pipes: referenced here so that no
// finalizer closes them (which would end the holder).
var sharedNets struct {
	sync.Mutex
	nets    map[string]*netStart
	holders []*os.File
}

// netStart is a shared namespace's start, done or under way.
type netStart struct {
	done  chan struct{} // closed when ns or err is set
	ns    *os.File
	err   error
	began time.Time
}

// PrepareNetwork starts the namespace default-network sandboxes share, in
// the background, unless it is started: the helper's start-up (tens of
// milliseconds, more under load) then overlaps what a build does before
// its first RUN step with the default network. Call it once such a step is
// known to run. A failure is returned by the next Run that needs the
// network, so that it names the step.
func PrepareNetwork() {
	if h, _ := findNetHelper(); h != nil {
		sharedNets.Lock()
		defer sharedNets.Unlock()
		startShared(helperPlan(h))
	}
}

// startShared returns the start of p's shared namespace, beginning it if
// there is none. sharedNets is locked.
func startShared(p netPlan) *netStart {
	if s := sharedNets.nets[p.helper.name]; s != nil {
		return s
	}
	s := &netStart{done: make(chan struct{}), began: time.Now()}
	if sharedNets.nets == nil {
		sharedNets.nets = map[string]*netStart{}
	}
	sharedNets.nets[p.helper.name] = s
	// The holder's and the helper's Pdeathsig follow the thread that
	// started them: this goroutine keeps its thread for the process's
	// life.
	go func() {
		runtime.LockOSThread()
		ns, holder, err := startSharedNetwork(p)
		sharedNets.Lock()
		s.ns, s.err = ns, err
		if err == nil {
			sharedNets.holders = append(sharedNets.holders, holder)
		}
		sharedNets.Unlock()
		close(s.done)
		if err == nil {
			select {}
		}
	}()
	return s
}

// sharedNetwork returns (an open file of) the namespace the sandboxes of
// plan p share, making it the first time. A start that failed is dropped
// once a step has seen it; one that began before this step asked (by
// PrepareNetwork, perhaps hours ago in serve) is tried again once, so
// that a step reports only a failure of its own time.
func sharedNetwork(ctx context.Context, p netPlan) (*os.File, error) {
	asked := time.Now()
	for {
		sharedNets.Lock()
		s := startShared(p)
		sharedNets.Unlock()
		select {
		case <-s.done:
		case <-ctx.Done():
			return nil, fmt.Errorf("waiting for the shared network namespace: %w", context.Cause(ctx))
		}
		if s.err == nil {
			return s.ns, nil
		}
		sharedNets.Lock()
		if sharedNets.nets[p.helper.name] == s {
			delete(sharedNets.nets, p.helper.name)
		}
		sharedNets.Unlock()
		if !s.began.Before(asked) {
			return nil, s.err
		}
		asked = s.began // once: any later start began after this one
	}
}

// startSharedNetwork starts the holder and the helper; it returns the
// namespace and the holder's stdin, whose closing ends the holder.
func startSharedNetwork(p netPlan) (ns, holderIn *os.File, err error) {
	stdinR, stdinW, err := os.Pipe()
	if err != nil {
		return nil, nil, err
	}
	defer stdinR.Close()
	holder := exec.Command(initPath())
	holder.Args = []string{"builder-netns-holder"}
	holder.Env = []string{sandboxinit.Env + "=" + sandboxinit.EnvHold, "GOMAXPROCS=1", "GOGC=off"}
	holder.Stdin = stdinR
	holder.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWNET, Pdeathsig: syscall.SIGKILL}
	if err := holder.Start(); err != nil {
		stdinW.Close()
		return nil, nil, fmt.Errorf("starting the network namespace holder: %w", err)
	}
	fail := func(err error) (*os.File, *os.File, error) {
		stdinW.Close()
		holder.Process.Kill()
		holder.Wait()
		return nil, nil, err
	}
	pid := holder.Process.Pid
	ns, err = os.Open("/proc/" + strconv.Itoa(pid) + "/ns/net")
	if err != nil {
		return fail(fmt.Errorf("opening the shared network namespace: %w", err))
	}
	readyR, readyW, err := os.Pipe()
	if err != nil {
		ns.Close()
		return fail(err)
	}
	stop := p.start(pid, readyW)
	b, err := io.ReadAll(readyR)
	readyR.Close()
	switch {
	case err != nil:
	case len(b) == 1 && b[0] == 0:
		// stdinW stays open, and the holder with it, until the process
		// exits; so does the helper.
		return ns, stdinW, nil
	case len(b) == 0:
		err = errors.New("the network helper stopped before it was ready")
	default:
		err = errors.New(string(b))
	}
	stop()
	ns.Close()
	return fail(err)
}
