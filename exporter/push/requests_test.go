package push

import "testing"

// TestCheckHost: an upload or redirect may go to the registry's own host
// or to a public one, not to a private or loopback address of another
// host, however the address is spelled.
func TestCheckHost(t *testing.T) {
	for _, tc := range []struct {
		from, to string
		ok       bool
	}{
		{"127.0.0.1", "127.0.0.1", true},
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
	} {
		if err := checkHost(tc.from, tc.to); (err == nil) != tc.ok {
			t.Errorf("checkHost(%q, %q) = %v, want ok %v", tc.from, tc.to, err, tc.ok)
		}
	}
}
