package coord

import (
	"os"
	"testing"

	"github.com/opencontainers/go-digest"
)

// TestLeaseAddRetriesAfterFailedWrite: names whose write failed are not
// taken as leased, so adding them again writes them.
func TestLeaseAddRetriesAfterFailedWrite(t *testing.T) {
	l, err := NewLeaseFile(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	blob := digest.FromString("blob")
	good := l.f
	ro, err := os.Open(l.path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	l.f = ro // writes to a read-only descriptor fail
	if err := l.Add(KindBlob, blob.String()); err == nil {
		t.Fatal("Add through a read-only file succeeded")
	}
	l.f = good
	if err := l.Add(KindBlob, blob.String()); err != nil {
		t.Fatal(err)
	}
	h, live, err := readLease(l.path)
	if err != nil || !live {
		t.Fatalf("readLease = %v, %v", live, err)
	}
	if len(h.Blobs) != 1 || h.Blobs[0] != blob {
		t.Fatalf("leased blobs = %v, want [%s]", h.Blobs, blob)
	}
}
