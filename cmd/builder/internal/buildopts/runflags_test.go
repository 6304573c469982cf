package buildopts

import (
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/builder-dev/builder/build"
)

func TestParseSecrets(t *testing.T) {
	tests := []struct {
		in   []string
		want map[string]build.Secret
		err  string
	}{
		{in: []string{"id=a,src=/f"}, want: map[string]build.Secret{"a": {File: "/f"}}},
		{in: []string{"id=a,source=/f", "id=b,env=VAR"}, want: map[string]build.Secret{"a": {File: "/f"}, "b": {Env: "VAR"}}},
		{in: []string{"id=a,type=env,src=VAR"}, want: map[string]build.Secret{"a": {Env: "VAR"}}},
		{in: []string{"id=TOKEN"}, want: map[string]build.Secret{"TOKEN": {Env: "TOKEN"}}},
		{in: []string{"id=a,type=file"}, want: map[string]build.Secret{"a": {File: "a"}}},
		{in: []string{"src=/f"}, err: "missing id="},
		{in: []string{"id=a,src=/f,env=V"}, err: "not both"},
		{in: []string{"id=a,bogus=1"}, err: "unknown key"},
		{in: []string{"id=a,type=ssh"}, err: "unknown type"},
		{in: []string{"id"}, err: "not key=value"},
	}
	for _, tt := range tests {
		got, err := parseSecrets(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("parseSecrets(%q) error = %v, want %q", tt.in, err, tt.err)
			}
			continue
		}
		if err != nil || !reflect.DeepEqual(got, tt.want) {
			t.Errorf("parseSecrets(%q) = %v, %v, want %v", tt.in, got, err, tt.want)
		}
	}
}

func TestParseSSH(t *testing.T) {
	dir := t.TempDir()
	sock := filepath.Join(dir, "agent.sock")
	ln, err := net.Listen("unix", sock)
	if err != nil {
		t.Skip(err)
	}
	defer ln.Close()
	t.Setenv("SSH_AUTH_SOCK", sock)
	got, err := parseSSH([]string{"default", "other=" + sock})
	if err != nil || !reflect.DeepEqual(got, map[string]string{"default": sock, "other": sock}) {
		t.Errorf("parseSSH = %v, %v", got, err)
	}
	file := filepath.Join(dir, "key")
	os.WriteFile(file, []byte("k"), 0o600)
	for in, want := range map[string]string{"x=" + file: "not a socket", "x=" + dir + "/nope": "no such file", "=" + sock: "missing id"} {
		if _, err := parseSSH([]string{in}); err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("parseSSH(%q) error = %v, want %q", in, err, want)
		}
	}
	t.Setenv("SSH_AUTH_SOCK", "")
	if _, err := parseSSH([]string{"default"}); err == nil || !strings.Contains(err.Error(), "SSH_AUTH_SOCK") {
		t.Errorf("parseSSH(default) without an agent: error = %v", err)
	}
}

// TestParseAddHosts: a host name cannot add a line or field to /etc/hosts.
func TestParseAddHosts(t *testing.T) {
	got, err := parseAddHosts([]string{"db:10.0.0.1", "v6=fd00::1", "b:[::1]"})
	if err != nil || len(got) != 3 || got[0].IP != "10.0.0.1" || got[1].Host != "v6" || got[2].IP != "::1" {
		t.Errorf("parseAddHosts = %v, %v", got, err)
	}
	for _, in := range []string{"a\n1.2.3.4 evil:1.1.1.1", "a b:1.1.1.1", "a#c:1.1.1.1", "a\tb=1.1.1.1", ":1.1.1.1", "a:1.1.1.1\nx"} {
		if _, err := parseAddHosts([]string{in}); err == nil {
			t.Errorf("parseAddHosts(%q): no error", in)
		}
	}
}
