package localctx

import (
	"net"
	"os"
	"path/filepath"
	"testing"
)

// TestChecksumSkipsSockets: a socket in the context is neither an error
// nor part of the checksum (BuildKit leaves sockets out).
func TestChecksumSkipsSockets(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "f"), []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := func() string {
		t.Helper()
		tree, err := NewTree(dir, nil)
		if err != nil {
			t.Fatal(err)
		}
		s, err := tree.Checksum(".", nil)
		if err != nil {
			t.Fatalf("Checksum: %v", err)
		}
		return s
	}
	before := sum()
	ln, err := net.Listen("unix", filepath.Join(dir, "daemon.ipc"))
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	if after := sum(); after != before {
		t.Errorf("checksum with a socket = %s, want %s as without it", after, before)
	}
}
