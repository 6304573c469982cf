package executor

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/builder-dev/builder/executor/sandboxinit"
	"golang.org/x/sys/unix"
)

// The default network (NetworkDefault) is a network namespace of the
// sandbox's own, connected to the outside by a user-mode network stack
// that runs in builder's (the host's) namespace. It works the same as root
// and rootless, since the helper needs no privilege outside the user
// namespace that owns the sandbox's network namespace.
//
// slirp4netns is preferred: it configures the interface in a few
// milliseconds with little CPU and exits when builder goes away
// (--exit-fd). pasta (Debian's passt) is the fallback; in its 2023 Debian
// version it spends ~0.1 s of CPU starting up.
//
// The sandboxes of one builder process share one such namespace and helper
// (netshared_linux.go): the init joins it through sandboxinit.NetFD. The
// code below that starts a helper for a sandbox's own namespace is what connects the
// shared one, once.
//
// A helper's start-up runs in parallel with other setup: it is started as
// soon as the namespace's holder exists, and the waiter reads
// sandboxinit.NetFD for a single 0 byte (the interface is configured) or an
// error message, then EOF. The interface counts as configured once the sandbox has its default route, which both
// helpers add last; Run polls /proc/PID/net/route for it. slirp4netns's
// --ready-fd comes only after it has also set up its own sandbox and
// seccomp filter, several times later; packets sent meanwhile wait in the
// tap device's queue.

// netHelperEnv forces a helper: slirp4netns, pasta, or none (the host
// network without CAP_NET_RAW). For tests and benchmarks.
const netHelperEnv = "BUILDER_NETWORK_HELPER"

const (
	// slirp4netns's fixed addresses (10.0.2.0/24 by default).
	slirpDNS = "10.0.2.3"
	// pastaDNS is the address pasta answers DNS on (--dns-forward) and
	// relays to the host's first resolver. Link-local, so it names no
	// real host; the sandbox routes it to pasta by its default route.
	pastaDNS = "169.254.1.1"
	// helperReadyTimeout bounds the wait for the helper's interface.
	helperReadyTimeout = 30 * time.Second
)

// netHelper is an installed user-mode network stack.
type netHelper struct {
	name string // "slirp4netns" or "pasta"
	path string
}

var (
	helperOnce  sync.Once
	helperFound *netHelper
	helperWarn  string
)

// findNetHelper returns the helper to use, or nil and a warning saying why
// there is none.
func findNetHelper() (*netHelper, string) {
	helperOnce.Do(func() {
		names := []string{"slirp4netns", "pasta"}
		if v := os.Getenv(netHelperEnv); v != "" {
			names = []string{v}
		}
		if names[0] == "none" {
			helperWarn = netHelperEnv + "=none: RUN steps use the host network (without CAP_NET_RAW) instead of a private one"
			return
		}
		var found *netHelper
		for _, n := range names {
			if p, err := exec.LookPath(n); err == nil {
				found = &netHelper{name: n, path: p}
				break
			}
		}
		if found == nil {
			helperWarn = "no slirp4netns or pasta in $PATH: RUN steps use the host network (without CAP_NET_RAW) instead of a private one; apt-get install slirp4netns (or passt)"
			return
		}
		// The helper opens it in the sandbox's namespace as this user: a
		// node rootless builder may not open (mode 0600 on some hosts;
		// Debian's default is 0666) fails it for every step.
		tun, err := os.OpenFile("/dev/net/tun", os.O_RDWR, 0)
		if err != nil {
			helperWarn = fmt.Sprintf("cannot open /dev/net/tun (%v): RUN steps use the host network (without CAP_NET_RAW) instead of a private one", err)
			return
		}
		tun.Close()
		helperFound = found
	})
	return helperFound, helperWarn
}

// NetworkWarning returns a one-line warning when the default network falls
// back to the host's network because no user-mode network helper can run
// here; "" when it can.
func NetworkWarning() string {
	_, w := findNetHelper()
	return w
}

// netPlan is how one sandbox gets its network.
type netPlan struct {
	init   sandboxinit.Net
	clone  uintptr    // CLONE_NEWNET or 0
	helper *netHelper // the helper to start for this sandbox
	// shared is the namespace to join instead of one of its own.
	shared *os.File
	dns    string // the helper's DNS forwarder address
	// keepDNS: the sandbox can reach the host's other IPv4 nameservers.
	keepDNS bool
	ipv6    bool // the helper gives the sandbox IPv6
}

func planNetwork(ctx context.Context, spec Spec) (netPlan, error) {
	switch spec.Network {
	case NetworkHost:
		return netPlan{}, nil
	case NetworkNone:
		return netPlan{init: sandboxinit.Net{Private: true}, clone: unix.CLONE_NEWNET}, nil
	case NetworkDefault:
		h, _ := findNetHelper()
		if h == nil {
			return netPlan{init: sandboxinit.Net{DropNetRaw: !spec.Insecure}}, nil
		}
		p := helperPlan(h)
		ns, err := sharedNetwork(ctx, p)
		if err != nil {
			return netPlan{}, err
		}
		p.init, p.clone, p.helper, p.shared = sandboxinit.Net{Private: true, Shared: true}, 0, nil, ns
		return p, nil
	}
	return netPlan{}, fmt.Errorf("executor: unknown network mode %q (want %q, %q or %q)", spec.Network, NetworkDefault, NetworkNone, NetworkHost)
}

// helperPlan is the plan of a sandbox of its own network namespace that
// helper h connects.
func helperPlan(h *netHelper) netPlan {
	p := netPlan{init: sandboxinit.Net{Private: true, Wait: true}, clone: unix.CLONE_NEWNET, helper: h, dns: slirpDNS, keepDNS: true}
	if h.name == "pasta" {
		// pasta copies the host's addresses and routes. In Debian
		// 12's version UDP to the host's nameserver does not get
		// through; its forwarder does.
		p.dns, p.ipv6 = pastaDNS, hostHasDefaultRoute6()
		p.keepDNS = false
	}
	return p
}

// helperRun is a helper serving one sandbox.
type helperRun struct {
	cmd    *exec.Cmd
	exitW  *os.File // slirp4netns exits when this closes
	stderr bytes.Buffer
	done   chan struct{} // closed when cmd has exited
	err    error         // cmd.Wait's, once done is closed
	quit   chan struct{} // closed by stop
	ready  chan struct{} // closed when readiness has been reported
}

// start starts the helper for the sandbox whose init is pid, and reports
// its readiness (or failure) on ready, which it closes. It must run on the
// thread that started the init: Pdeathsig is per thread. The returned stop
// ends the helper; call it after the init has been waited for.
func (p netPlan) start(pid int, ready *os.File) (stop func()) {
	h := &helperRun{done: make(chan struct{}), quit: make(chan struct{}), ready: make(chan struct{})}
	var files []*os.File // to close in this process once started
	var err error
	switch p.helper.name {
	case "slirp4netns":
		files, err = h.slirpCmd(p.helper.path, pid)
	case "pasta":
		files, err = h.pastaCmd(p.helper.path, pid, p.dns)
	}
	if err == nil {
		h.cmd.Stderr = &h.stderr
		h.cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
		err = h.cmd.Start()
	}
	for _, f := range files {
		f.Close()
	}
	if err != nil {
		if h.exitW != nil {
			h.exitW.Close()
		}
		ready.WriteString(fmt.Sprintf("starting %s: %v", p.helper.name, err))
		ready.Close()
		return func() {}
	}
	go func() {
		h.err = h.cmd.Wait()
		close(h.done)
	}()
	go func() {
		defer close(h.ready)
		defer ready.Close()
		if werr := h.waitRoutes(pid, p.ipv6); werr != nil {
			ready.WriteString(werr.Error())
		} else {
			ready.Write([]byte{0})
		}
	}()
	return h.stop
}

// slirpCmd prepares slirp4netns, with fd 3 its exit pipe. It returns the
// files the child inherits, to close here.
func (h *helperRun) slirpCmd(path string, pid int) (inherit []*os.File, err error) {
	exitR, exitW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	h.exitW = exitW
	h.cmd = exec.Command(path,
		"--configure", "--mtu=65520",
		// 10.0.2.2 would otherwise be the host's 127.0.0.1.
		"--disable-host-loopback",
		// Its own mount namespace with nothing but what it needs, few
		// capabilities and a seccomp filter: it parses untrusted packets.
		"--enable-sandbox", "--enable-seccomp",
		"--exit-fd=3",
		strconv.Itoa(pid), "tap0")
	h.cmd.ExtraFiles = []*os.File{exitR}
	return []*os.File{exitR}, nil
}

// pastaCmd prepares pasta, joining the sandbox's network namespace through
// an fd opened here: pasta drops capabilities before it opens the
// namespace, and could then no longer open the init's /proc/PID/ns/net.
func (h *helperRun) pastaCmd(path string, pid int, dns string) (inherit []*os.File, err error) {
	ns, err := os.Open("/proc/" + strconv.Itoa(pid) + "/ns/net")
	if err != nil {
		return nil, err
	}
	h.cmd = exec.Command(path,
		"--foreground", "--quiet", "--config-net",
		// No forwarding of ports in either direction: -T/-U auto would
		// make the host's loopback services reachable on the sandbox's.
		"-t", "none", "-u", "none", "-T", "none", "-U", "none",
		// The gateway address would otherwise be the host's loopback.
		"--no-map-gw",
		"--dns-forward", dns,
		// The same user: pasta's default, nobody, could not join the
		// namespace (and need not be mapped when rootless).
		"--runas", strconv.Itoa(os.Getuid())+":"+strconv.Itoa(os.Getgid()),
		"--netns", "/proc/self/fd/3")
	h.cmd.ExtraFiles = []*os.File{ns}
	return []*os.File{ns}, nil
}

// waitRoutes polls the sandbox's routes until the helper has installed the
// default ones (pasta configures IPv6 after IPv4, so its route comes last).
func (h *helperRun) waitRoutes(pid int, ipv6 bool) error {
	dir := "/proc/" + strconv.Itoa(pid) + "/net/"
	deadline := time.Now().Add(helperReadyTimeout)
	for delay := 100 * time.Microsecond; ; delay = min(2*delay, 2*time.Millisecond) {
		ok, err := hasDefaultRoute(dir, ipv6)
		switch {
		case err != nil:
			return fmt.Errorf("reading the sandbox's routes: %w", err)
		case ok:
			return nil
		case time.Now().After(deadline):
			return fmt.Errorf("%s did not configure the sandbox's network within %v", filepath.Base(h.cmd.Path), helperReadyTimeout)
		}
		select {
		case <-h.done:
			return h.failure()
		case <-h.quit:
			return fmt.Errorf("%s was stopped before the network was ready", filepath.Base(h.cmd.Path))
		case <-time.After(delay):
		}
	}
}

// failure describes a helper that exited.
func (h *helperRun) failure() error {
	msg := strings.TrimSpace(h.stderr.String())
	if i := strings.LastIndexByte(msg, '\n'); i >= 0 {
		msg = msg[i+1:]
	}
	return fmt.Errorf("network helper %s exited before the network was ready (%v): %s", h.cmd.Path, h.err, msg)
}

func (h *helperRun) stop() {
	close(h.quit)
	if h.exitW != nil {
		h.exitW.Close()
	} else {
		h.cmd.Process.Signal(syscall.SIGTERM)
	}
	select {
	case <-h.done:
	case <-time.After(2 * time.Second):
		h.cmd.Process.Kill()
		<-h.done
	}
	<-h.ready
}

// hasDefaultRoute reports whether the namespace whose /proc/PID/net/ is
// dir has an IPv4 default route, and if ipv6, an IPv6 one.
func hasDefaultRoute(dir string, ipv6 bool) (bool, error) {
	b, err := os.ReadFile(dir + "route")
	if err != nil {
		return false, err
	}
	// Iface Destination Gateway ...: a default route is destination 0.
	v4 := false
	for _, line := range strings.Split(string(b), "\n")[1:] {
		if f := strings.Fields(line); len(f) > 1 && f[1] == "00000000" {
			v4 = true
		}
	}
	if !v4 || !ipv6 {
		return v4, nil
	}
	b, err = os.ReadFile(dir + "ipv6_route")
	if err != nil {
		return false, err
	}
	return hasDefaultRoute6(b), nil
}

// hasDefaultRoute6 finds ::/0 in /proc/net/ipv6_route content.
func hasDefaultRoute6(b []byte) bool {
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		// dest, prefix length, ..., device last; skip the loopback
		// device's unreachable default.
		if len(f) >= 10 && f[0] == strings.Repeat("0", 32) && f[1] == "00" && f[9] != "lo" {
			return true
		}
	}
	return false
}

func hostHasDefaultRoute6() bool {
	b, err := os.ReadFile("/proc/net/ipv6_route")
	return err == nil && hasDefaultRoute6(b)
}
