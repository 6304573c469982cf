package executor_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/builder-dev/builder/executor"
	"golang.org/x/sys/unix"
)

// netProbeEnv makes the test binary, run inside a sandbox as /probe, try one
// attack and print its outcome: "tcp ADDR", "abstract NAME" (connect(2) to
// an abstract UNIX socket), or "packet" (an AF_PACKET socket, and the
// interfaces it could bind to).
const netProbeEnv = "EXECUTOR_TEST_NET_PROBE"

func init() {
	probe := os.Getenv(netProbeEnv)
	if probe == "" {
		return
	}
	kind, arg, _ := strings.Cut(probe, " ")
	switch kind {
	case "tcp":
		for _, addr := range strings.Fields(arg) {
			c, err := net.DialTimeout("tcp", addr, 3*time.Second)
			if err == nil {
				c.Close()
			}
			fmt.Printf("%s %s\n", addr, errnoName(err))
		}
	case "abstract":
		fd, err := unix.Socket(unix.AF_UNIX, unix.SOCK_STREAM, 0)
		if err == nil {
			err = unix.Connect(fd, &unix.SockaddrUnix{Name: "@" + arg})
		}
		fmt.Println(errnoName(err))
	case "packet":
		fd, err := unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ALL)))
		fmt.Println(errnoName(err))
		if err == nil {
			unix.Close(fd)
		}
		ifs, _ := net.Interfaces()
		for _, i := range ifs {
			fmt.Println(i.Name)
		}
	}
	os.Exit(0)
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// errnoName is "ok" for nil, else the errno's name (ECONNREFUSED), or the
// error text when there is no errno (a timeout).
func errnoName(err error) string {
	if err == nil {
		return "ok"
	}
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return unix.ErrnoName(errno)
	}
	if ne, ok := err.(net.Error); ok && ne.Timeout() {
		return "timeout"
	}
	return err.Error()
}

// probeSpec runs probe in s with the test binary as /probe; the host's
// libraries are bound in because it is dynamically linked.
func probeSpec(t *testing.T, s *sandbox, network, probe string) executor.Spec {
	t.Helper()
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	spec := s.spec("/probe")
	spec.Env = append(spec.Env, netProbeEnv+"="+probe)
	spec.Network = network
	spec.Mounts = []executor.BindMount{{Source: self, Target: "/probe", Readonly: true}}
	for _, dir := range []string{"/lib", "/lib64", "/usr/lib", "/usr/lib64"} {
		if src, err := filepath.EvalSymlinks(dir); err == nil {
			spec.Mounts = append(spec.Mounts, executor.BindMount{Source: src, Target: dir, Readonly: true})
		}
	}
	return spec
}

// runHelper runs spec in a child process of the test binary with the
// network helper forced to helper (slirp4netns, pasta or none), since the
// helper is chosen once per process.
func runHelper(t *testing.T, helper string, spec executor.Spec) (string, error) {
	t.Helper()
	specJSON, err := json.Marshal(spec)
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), helperSpecEnv+"="+string(specJSON), "BUILDER_NETWORK_HELPER="+helper)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		err = fmt.Errorf("%w: %s", err, stderr.String())
	}
	return string(out), err
}

// netHelpers are the helpers installed here; tests run with each.
func netHelpers(t *testing.T) []string {
	var hs []string
	for _, h := range []string{"slirp4netns", "pasta"} {
		if _, err := exec.LookPath(h); err == nil {
			hs = append(hs, h)
		}
	}
	if len(hs) == 0 {
		t.Skip("needs slirp4netns or pasta (apt-get install slirp4netns passt)")
	}
	tun, err := os.OpenFile("/dev/net/tun", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("the network helpers need /dev/net/tun, and this user cannot open it: %v", err)
	}
	tun.Close()
	return hs
}

// hostTargets are addresses at which a step might find the host's
// services on port: its loopback, its other addresses, its gateway, and
// slirp4netns's alias for the host's loopback.
func hostTargets(t *testing.T, port string) []string {
	targets := []string{"127.0.0.1", "10.0.2.2"}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok && !ipn.IP.IsLoopback() && !ipn.IP.IsLinkLocalUnicast() {
			targets = append(targets, ipn.IP.String())
		}
	}
	if gw := hostGateway(); gw != "" {
		targets = append(targets, gw)
	}
	for i, h := range targets {
		targets[i] = net.JoinHostPort(h, port)
	}
	return targets
}

func hostGateway() string {
	f, err := os.Open("/proc/net/route")
	if err != nil {
		return ""
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fl := strings.Fields(sc.Text())
		if len(fl) > 2 && fl[1] == "00000000" {
			if v, err := strconv.ParseUint(fl[2], 16, 32); err == nil {
				return net.IPv4(byte(v), byte(v>>8), byte(v>>16), byte(v>>24)).String()
			}
		}
	}
	return ""
}

// TestNetworkDefaultIsolation tries, from a step on the default network,
// what a hostile build would: the host's loopback services (directly, and
// through the helper's host aliases), a host abstract UNIX socket, and raw
// packets on the host's interfaces.
func TestNetworkDefaultIsolation(t *testing.T) {
	lower := newBusyboxRootfs(t)
	newSandbox(t, lower) // skips unless root
	tcp, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer tcp.Close()
	go acceptAll(tcp)
	_, port, _ := net.SplitHostPort(tcp.Addr().String())
	abstract := fmt.Sprintf("builder-net-test-%d", os.Getpid())
	ul, err := net.Listen("unix", "@"+abstract)
	if err != nil {
		t.Fatal(err)
	}
	defer ul.Close()
	go acceptAll(ul)
	hostIfs, _ := net.Interfaces()

	// The probes work: on the host's network they reach both listeners.
	out := mustRun(t, probeSpec(t, newSandbox(t, lower), executor.NetworkHost, "tcp 127.0.0.1:"+port))
	if out != "127.0.0.1:"+port+" ok" {
		t.Fatalf("probe on the host network: %q, want the loopback listener reached", out)
	}
	if out := mustRun(t, probeSpec(t, newSandbox(t, lower), executor.NetworkHost, "abstract "+abstract)); out != "ok" {
		t.Fatalf("probe on the host network: abstract socket %q, want ok", out)
	}

	for _, helper := range netHelpers(t) {
		t.Run(helper, func(t *testing.T) {
			targets := hostTargets(t, port)
			out, err := runHelper(t, helper, probeSpec(t, newSandbox(t, lower), executor.NetworkDefault, "tcp "+strings.Join(targets, " ")))
			if err != nil {
				t.Fatal(err)
			}
			for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
				if strings.HasSuffix(line, " ok") {
					t.Errorf("step connected to the host's loopback listener at %s", strings.TrimSuffix(line, " ok"))
				}
			}
			out, err = runHelper(t, helper, probeSpec(t, newSandbox(t, lower), executor.NetworkDefault, "abstract "+abstract))
			if err != nil {
				t.Fatal(err)
			}
			if got := strings.TrimSpace(out); got != "ECONNREFUSED" {
				t.Errorf("connect(2) to the host's abstract socket @%s: %s, want ECONNREFUSED", abstract, got)
			}
			out, err = runHelper(t, helper, probeSpec(t, newSandbox(t, lower), executor.NetworkDefault, "packet"))
			if err != nil {
				t.Fatal(err)
			}
			lines := strings.Fields(out)
			if len(lines) != 3 || lines[0] != "ok" || !slices.Contains(lines, "lo") {
				t.Fatalf("AF_PACKET probe: %q, want a socket and two interfaces, lo and the helper's tap", lines)
			}
			for _, i := range hostIfs {
				// pasta names its tap after the host's outbound interface.
				if i.Name != "lo" && slices.Contains(lines[1:], i.Name) && !(helper == "pasta" && i.Flags&net.FlagUp != 0) {
					t.Errorf("AF_PACKET probe sees the host's interface %s: %q", i.Name, lines)
				}
			}
		})
	}
}

// TestNetworkPrepared: PrepareNetwork starts the shared network in the
// background, and the step run after it uses that network, started once.
func TestNetworkPrepared(t *testing.T) {
	lower := newBusyboxRootfs(t)
	newSandbox(t, lower) // skips unless root
	t.Setenv(helperPrepareEnv, "1")
	for _, helper := range netHelpers(t) {
		t.Run(helper, func(t *testing.T) {
			out, err := runHelper(t, helper, probeSpec(t, newSandbox(t, lower), executor.NetworkDefault, "packet"))
			if err != nil {
				t.Fatal(err)
			}
			if lines := strings.Fields(out); len(lines) != 3 || lines[0] != "ok" {
				t.Errorf("AF_PACKET probe after PrepareNetwork: %q, want lo and the helper's tap", lines)
			}
		})
	}
}

// TestNetworkFallback: without a helper the step gets the host's network
// but no raw sockets.
func TestNetworkFallback(t *testing.T) {
	s := newSandbox(t, newBusyboxRootfs(t))
	out, err := runHelper(t, "none", probeSpec(t, s, executor.NetworkDefault, "packet"))
	if err != nil {
		t.Fatal(err)
	}
	if got := strings.Fields(out); len(got) == 0 || got[0] != "EPERM" {
		t.Errorf("AF_PACKET socket in the fallback network: %q, want EPERM (no CAP_NET_RAW)", got)
	}
}

// TestNetworkDefaultOutbound fetches from the Debian mirror the host uses
// (deb.debian.org, as /etc/apt/sources.list.d/debian.sources names it):
// DNS through the helper's forwarder and outbound TCP. busybox-static's
// wget crashes without the libraries of static glibc's NSS, so busybox's
// own nslookup resolves and wget fetches by address. Skipped when the host
// itself cannot reach the mirror; retried, as the mirror may be slow.
func TestNetworkDefaultOutbound(t *testing.T) {
	const host, path = "deb.debian.org", "/debian/dists/bookworm/Release"
	lower := newBusyboxRootfs(t)
	newSandbox(t, lower)
	hc := http.Client{Timeout: 30 * time.Second}
	resp, err := hc.Get("http://" + host + path)
	if err != nil {
		t.Skipf("the host cannot reach the Debian mirror: %v", err)
	}
	resp.Body.Close()
	for _, a := range []string{"nslookup", "awk", "wget"} {
		if err := os.Symlink("busybox", filepath.Join(lower, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
	script := `set -e
ip=$(nslookup ` + host + ` | awk '/^Name:/ { n = 1 } n && /^Address/ && $2 !~ /:/ { print $2; exit }')
echo "resolved $ip"
wget -O /tmp/release --header 'Host: ` + host + `' "http://$ip` + path + `"
head -n 1 /tmp/release`
	for _, helper := range netHelpers(t) {
		t.Run(helper, func(t *testing.T) {
			var out string
			var err error
			for try := 0; try < 3; try++ {
				out, err = runHelper(t, helper, newSandbox(t, lower).spec("sh", "-c", script))
				if err == nil && strings.Contains(out, "Origin: Debian") {
					return
				}
				time.Sleep(time.Second)
			}
			t.Errorf("fetching http://%s%s on the default network with %s: %q, %v; want the Release file", host, path, helper, out, err)
		})
	}
}

func acceptAll(l net.Listener) {
	for {
		c, err := l.Accept()
		if err != nil {
			return
		}
		c.Close()
	}
}
