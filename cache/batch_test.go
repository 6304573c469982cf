package cache

import (
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestPutExport: record changes and names go in one write transaction;
// names given as they are and no changes write nothing; a missing
// snapshot fails the whole transaction.
func TestPutExport(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "meta.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	for _, id := range []string{"s1", "s2"} {
		if err := db.PutSnapshot(Snapshot{ID: id, Created: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	blob := ocispec.Descriptor{Digest: digest.FromString("layer"), Size: 5}
	addBlob := func(s *Snapshot) { s.Blobs = map[string]ocispec.Descriptor{"gzip": blob} }
	img := Image{Name: "app", Manifest: ocispec.Descriptor{Digest: digest.FromString("m"), Size: 2}, Snapshot: "s2"}
	before := db.Writes()
	if err := db.PutExport(map[string]func(*Snapshot){"s1": addBlob, "s2": addBlob}, []Image{img}); err != nil {
		t.Fatal(err)
	}
	if n := db.Writes() - before; n != 1 {
		t.Errorf("PutExport of two records and a name: %d write transactions, want 1", n)
	}
	for _, id := range []string{"s1", "s2"} {
		if s, err := db.Snapshot(id); err != nil || s.Blobs["gzip"].Digest != blob.Digest {
			t.Errorf("Snapshot(%s).Blobs = %v, %v; want gzip %v", id, s.Blobs, err, blob)
		}
	}
	if got, err := db.Image("app"); err != nil || got.Manifest.Digest != img.Manifest.Digest {
		t.Errorf("Image(app) = %v, %v", got, err)
	}
	before = db.Writes()
	img.Created = time.Now()
	if err := db.PutExport(nil, []Image{img}); err != nil {
		t.Fatal(err)
	}
	if n := db.Writes() - before; n != 0 {
		t.Errorf("PutExport naming an image as it is: %d write transactions, want 0", n)
	}
	img.Name = "other"
	err = db.PutExport(map[string]func(*Snapshot){"gone": addBlob}, []Image{img})
	if !errors.Is(err, ErrNotFound) {
		t.Errorf("PutExport changing a missing record: %v, want ErrNotFound", err)
	}
	if _, err := db.Image("other"); err == nil {
		t.Error("a failed PutExport named its image")
	}
}
