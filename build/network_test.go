package build_test

import (
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/builder-dev/builder/build"
)

// haveNetHelper reports whether a user-mode network helper is installed
// and can run (it needs /dev/net/tun), without which the default network is
// the host's.
func haveNetHelper() bool {
	tun, err := os.OpenFile("/dev/net/tun", os.O_RDWR, 0)
	if err != nil {
		return false
	}
	tun.Close()
	for _, h := range []string{"slirp4netns", "pasta"} {
		if _, err := exec.LookPath(h); err == nil {
			return true
		}
	}
	return false
}

func TestRunNetwork(t *testing.T) {
	base := busyboxBase(t)
	st := openState(t, t.TempDir())
	hostNS, err := os.Readlink("/proc/self/ns/net")
	if err != nil {
		t.Skip(err)
	}
	// A service on the host's loopback, which only --network=host reaches.
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Close()
		}
	}()
	_, port, _ := net.SplitHostPort(l.Addr().String())
	probe := fmt.Sprintf(`sh -c 'readlink /proc/self/ns/net; ls /sys/class/net | tr "\n" " "; echo; if nc -w 3 127.0.0.1 %s </dev/null; then echo reached; else echo unreachable; fi' > /net`, port)
	// The same command three times: the network mode is part of the key,
	// so none of them may reuse another's result.
	df := `FROM {{BASE}} AS none
RUN --network=none ` + probe + `

FROM {{BASE}} AS host
RUN --network=host ` + probe + `

FROM {{BASE}}
RUN ` + probe + `
COPY --from=none /net /none
COPY --from=host /net /host
`
	ctx := writeContext(t, nil)
	_, _, _, err = runBuild(t, st, base, ctx, df, build.Options{})
	if err == nil || !strings.Contains(err.Error(), "Dockerfile:5") || !strings.Contains(err.Error(), "--allow network.host") {
		t.Fatalf("RUN --network=host without --allow: err = %v, want one naming Dockerfile:5 and --allow network.host", err)
	}
	files, _ := mustBuild(t, st, base, ctx, df, build.Options{Allow: []string{build.EntitlementNetworkHost}})
	type result struct {
		ns, ifs, reach string
	}
	parse := func(name string) result {
		lines := strings.Split(strings.TrimSpace(files[name].content), "\n")
		if len(lines) != 3 {
			t.Fatalf("%s network: %q, want 3 lines", name, lines)
		}
		return result{lines[0], strings.TrimSpace(lines[1]), lines[2]}
	}
	if r := parse("none"); r.ns == hostNS || r.ifs != "lo" || r.reach != "unreachable" {
		t.Errorf("--network=none: %+v, want a new namespace (host: %s) with only lo", r, hostNS)
	}
	if r := parse("host"); r.ns != hostNS || r.reach != "reached" {
		t.Errorf("--network=host: %+v, want the host's namespace %s and its loopback listener reached", r, hostNS)
	}
	r := parse("net")
	switch {
	case !haveNetHelper():
		if r.ns != hostNS {
			t.Errorf("default network without a helper: %+v, want the host's namespace", r)
		}
	case r.ns == hostNS || len(strings.Fields(r.ifs)) != 2 || r.reach != "unreachable":
		t.Errorf("default network: %+v, want a new namespace with lo and the helper's tap, the host's loopback listener unreachable", r)
	}

	// The build-wide --network is the default of RUN without --network.
	df = "FROM {{BASE}}\nRUN " + probe + "\n"
	_, _, _, err = runBuild(t, st, base, ctx, df, build.Options{Network: "host"})
	if err == nil || !strings.Contains(err.Error(), "--network=host needs the entitlement: build with --allow network.host") {
		t.Errorf("--network=host without --allow: err = %v", err)
	}
	files, _ = mustBuild(t, st, base, ctx, df, build.Options{Network: "none"})
	if r := parse("net"); r.ns == hostNS || r.ifs != "lo" {
		t.Errorf("build --network=none: %+v, want a namespace with only lo", r)
	}
	files, _ = mustBuild(t, st, base, ctx, df, build.Options{Network: "host", Allow: []string{build.EntitlementNetworkHost}})
	if r := parse("net"); r.ns != hostNS || r.reach != "reached" {
		t.Errorf("build --network=host: %+v, want the host's namespace", r)
	}
	if _, _, _, err := runBuild(t, st, base, ctx, df, build.Options{Network: "bridge"}); err == nil || !strings.Contains(err.Error(), "--network=bridge") {
		t.Errorf("--network=bridge: err = %v, want one naming it", err)
	}
}

// TestRunNetworkOutbound fetches from the Debian mirror this machine's apt
// uses (deb.debian.org) in a RUN step on the default network. Skipped when
// the host cannot reach the mirror. busybox-static's wget cannot resolve
// names (static glibc NSS), so busybox's nslookup resolves.
func TestRunNetworkOutbound(t *testing.T) {
	const host, path = "deb.debian.org", "/debian/dists/bookworm/Release"
	if !haveNetHelper() {
		t.Skip("needs slirp4netns or pasta for the default network")
	}
	hc := http.Client{Timeout: 30 * time.Second}
	resp, err := hc.Get("http://" + host + path)
	if err != nil {
		t.Skipf("the host cannot reach the Debian mirror: %v", err)
	}
	resp.Body.Close()
	base := busyboxBase(t)
	st := openState(t, t.TempDir())
	// Retries inside the step, so a slow mirror does not fail the test.
	df := `FROM {{BASE}}
RUN for try in 1 2 3; do \
      ip=$(nslookup ` + host + ` | awk '/^Name:/ { n = 1 } n && /^Address/ && $2 !~ /:/ { print $2; exit }') && \
      wget -O /release --header 'Host: ` + host + `' "http://$ip` + path + `" && break; \
      sleep 2; \
    done; head -n 1 /release > /origin
`
	files, _ := mustBuild(t, st, base, writeContext(t, nil), df, build.Options{})
	checkContent(t, files, "origin", "Origin: Debian")
}
