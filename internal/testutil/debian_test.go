package testutil

import (
	"os"
	"path/filepath"
	"testing"
)

func TestHostDebianMirror(t *testing.T) {
	for _, tc := range []struct {
		name  string
		files map[string]string
		want  string
	}{
		{"deb822", map[string]string{
			"sources.list.d/other.sources": "Types: deb\nURIs: http://other.example/x\nSuites: nodistro\n",
			"sources.list.d/debian.sources": "Types: deb-src\nURIs: http://src.example/debian\nSuites: bookworm\n\n" +
				"Types: deb\n# a comment\nURIs: http://mirror.example/debian http://second.example/debian\nSuites: bookworm bookworm-updates\nComponents: main\n",
		}, "http://mirror.example/debian"},
		{"one-line", map[string]string{
			"sources.list": "# deb http://commented.example/debian bookworm main\n" +
				"deb http://security.example/debian-security bookworm-security main\n" +
				"deb [arch=amd64 signed-by=/k.gpg] http://mirror.example/debian bookworm main\n",
		}, "http://mirror.example/debian"},
		{"none", map[string]string{"sources.list": "deb http://mirror.example/debian trixie main\n"}, ""},
	} {
		dir := t.TempDir()
		for p, content := range tc.files {
			if err := os.MkdirAll(filepath.Dir(filepath.Join(dir, p)), 0o755); err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, p), []byte(content), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		got, err := hostDebianMirror(dir)
		if got != tc.want || (err != nil) != (tc.want == "") {
			t.Errorf("%s: hostDebianMirror = %q, %v; want %q", tc.name, got, err, tc.want)
		}
	}
}
