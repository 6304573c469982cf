package push

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"strings"
	"testing"
)

// TestCheckHost: an upload or redirect may go to the registry's own host,
// to a public one, or anywhere from a private or loopback registry, but a
// public registry may not send it to a private or loopback address,
// however the address is spelled.
func TestCheckHost(t *testing.T) {
	dns := map[string]string{
		"registry.example": "203.0.113.5", "registry.lan": "192.168.1.10",
		"mixed.example": "10.0.0.2 203.0.113.6",
	}
	lookupHost = func(_ context.Context, _, host string) ([]netip.Addr, error) {
		var out []netip.Addr
		for _, a := range strings.Fields(dns[host]) {
			out = append(out, netip.MustParseAddr(a))
		}
		if out == nil {
			return nil, errors.New("no such host")
		}
		return out, nil
	}
	defer func() { lookupHost = net.DefaultResolver.LookupNetIP }()
	for _, tc := range []struct {
		from, to string
		ok       bool
	}{
		{"127.0.0.1", "127.0.0.1", true},
		{"localhost", "127.0.0.1", true},
		{"localhost", "::1", true},
		{"127.0.0.1", "localhost", true},
		{"registry.lan", "192.168.1.10", true},
		{"10.0.0.5", "10.0.0.6", true},
		{"192.168.1.10", "169.254.169.254", true},
		{"registry.example", "storage.example", true},
		{"registry.example", "203.0.113.7", true},
		{"registry.example", "10.0.0.1", false},
		{"registry.example", "169.254.169.254", false},
		{"registry.example", "127.1", false},
		{"registry.example", "0x7f.0.0.1", false},
		{"registry.example", "2130706433", false},
		{"registry.example", "::1", false},
		{"registry.example", "::ffff:192.168.1.1", false},
		{"registry.example", "0.0.0.0", false},
		{"mixed.example", "10.0.0.2", false},
		{"nowhere.example", "127.0.0.1", false},
		{"203.0.113.7", "127.0.0.1", false},
		{"203.0.113.7", "169.254.169.254", false},
	} {
		if err := checkHost(context.Background(), tc.from, tc.to); (err == nil) != tc.ok {
			t.Errorf("checkHost(%q, %q) = %v, want ok %v", tc.from, tc.to, err, tc.ok)
		}
	}
}
