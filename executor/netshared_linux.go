package executor

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"sync"
	"syscall"

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
// sharedNets are the shared namespaces by helper name, and the holders'
// stdin pipes: referenced here so that no finalizer closes them (which
// would end the holder).
var sharedNets struct {
	sync.Mutex
	ns      map[string]*os.File
	holders []*os.File
}

// sharedNetwork returns (an open file of) the namespace the sandboxes of
// plan p share, making it the first time.
func sharedNetwork(p netPlan) (*os.File, error) {
	sharedNets.Lock()
	defer sharedNets.Unlock()
	if ns := sharedNets.ns[p.helper.name]; ns != nil {
		return ns, nil
	}
	type result struct {
		ns, holder *os.File
		err        error
	}
	done := make(chan result, 1)
	// The holder's and the helper's Pdeathsig follow the thread that
	// started them: this goroutine keeps its thread for the process's
	// life.
	go func() {
		runtime.LockOSThread()
		ns, holder, err := startSharedNetwork(p)
		done <- result{ns, holder, err}
		if err == nil {
			select {}
		}
	}()
	r := <-done
	if r.err != nil {
		return nil, r.err
	}
	if sharedNets.ns == nil {
		sharedNets.ns = map[string]*os.File{}
	}
	sharedNets.ns[p.helper.name] = r.ns
	sharedNets.holders = append(sharedNets.holders, r.holder)
	return r.ns, nil
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
