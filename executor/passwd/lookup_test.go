package passwd

import (
	"os"
	"path/filepath"
	"testing"
)

// TestLookupOwner checks --chown resolution against BuildKit's (verified
// by the conformance oracle: copy_chown_unknown_user, copy_chown_group_only):
// unknown names are not errors.
func TestLookupOwner(t *testing.T) {
	root := t.TempDir()
	if err := os.MkdirAll(filepath.Join(root, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(name, data string) {
		if err := os.WriteFile(filepath.Join(root, "etc", name), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1000:2000::/home/app:/bin/sh\n")
	write("group", "root:x:0:\napps:x:3000:\n")
	for _, tt := range []struct {
		spec     string
		uid, gid int
	}{
		{"app", 1000, 2000},
		{"7", 7, 7},
		{"7:8", 7, 8},
		{"app:apps", 1000, 3000},
		{":apps", 0, 3000},
		{":9", 0, 9},
		{"nosuchuser", 0, 0},
		{"app:nosuchgroup", 1000, 2000},
		{"5:nosuchgroup", 5, 5},
	} {
		uid, gid, err := LookupOwner(root, tt.spec)
		if err != nil || uid != tt.uid || gid != tt.gid {
			t.Errorf("LookupOwner(%q) = %d, %d, %v; want %d, %d", tt.spec, uid, gid, err, tt.uid, tt.gid)
		}
	}
}
