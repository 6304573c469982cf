package executor

import "testing"

func TestResolvConf(t *testing.T) {
	tests := []struct {
		host, forwarder string
		keepRemote      bool
		want            string
	}{
		{"nameserver 127.0.0.53\noptions edns0", "", true, "nameserver 127.0.0.53\noptions edns0\n"},
		{"search example.com\nnameserver 127.0.0.53\nnameserver 127.0.0.1\nnameserver 10.1.1.1\nnameserver fd00::1\n", "10.0.2.3", true,
			"search example.com\nnameserver 10.0.2.3\nnameserver 10.1.1.1\n"},
		{"nameserver 10.1.1.1\nnameserver ::1\n", "169.254.1.1", false, "nameserver 169.254.1.1\n"},
		{"nameserver fd00::1\n", "10.0.2.3", true, "nameserver 10.0.2.3\n"},
		{"", "10.0.2.3", true, "nameserver 10.0.2.3\n"},
		{"nameserver not-an-address\nnameserver 192.0.2.9\n", "10.0.2.3", true, "nameserver 192.0.2.9\n"},
	}
	for _, tt := range tests {
		if got := string(resolvConf([]byte(tt.host), tt.forwarder, tt.keepRemote)); got != tt.want {
			t.Errorf("resolvConf(%q, %q, %v) = %q, want %q", tt.host, tt.forwarder, tt.keepRemote, got, tt.want)
		}
	}
}
