package executor

import (
	"bufio"
	"bytes"
	"net/netip"
	"strings"
)

// Network modes of Spec.Network besides NetworkNone.
const (
	// NetworkDefault gives the sandbox a network namespace of its own
	// whose only way out is a user-mode network stack (slirp4netns, or
	// pasta from Debian's passt) running in the host's namespace: outbound
	// connections work, the host's loopback services and abstract UNIX
	// sockets are out of reach. Without either helper the sandbox uses the
	// host's network without CAP_NET_RAW (see NetworkWarning).
	NetworkDefault = ""
	// NetworkHost shares the host's network namespace.
	NetworkHost = "host"
)

// resolvConf is the sandbox's resolv.conf, made from the host's. With the
// host's network (forwarder == "") it is the host's file as it is. In a
// private network a nameserver on the host's loopback (systemd-resolved,
// dnsmasq) is unreachable, so it becomes forwarder, the helper's DNS
// forwarder address, which relays to the host's first resolver. Other
// IPv4 nameservers are kept when keepRemote (slirp4netns reaches them);
// the rest (IPv6, which the helper may not route, and every one when
// !keepRemote) are dropped. If no nameserver is left, the forwarder is
// the only one.
func resolvConf(host []byte, forwarder string, keepRemote bool) []byte {
	if len(host) > 0 && !bytes.HasSuffix(host, []byte("\n")) {
		host = append(host, '\n')
	}
	if forwarder == "" {
		return host
	}
	var out bytes.Buffer
	servers := 0
	sc := bufio.NewScanner(bytes.NewReader(host))
	for sc.Scan() {
		line := sc.Text()
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "nameserver" {
			out.WriteString(line + "\n")
			continue
		}
		addr, err := netip.ParseAddr(f[1])
		if err == nil && keepRemote && !addr.IsLoopback() && addr.Unmap().Is4() {
			out.WriteString(line + "\n")
			servers++
			continue
		}
		if err == nil && addr.IsLoopback() && !strings.Contains(out.String(), "nameserver "+forwarder+"\n") {
			out.WriteString("nameserver " + forwarder + "\n")
			servers++
		}
	}
	if servers == 0 {
		out.WriteString("nameserver " + forwarder + "\n")
	}
	return out.Bytes()
}
