package cache

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestPutImageAgainWritesNothing: naming the same image again keeps the
// record as it was (its Created); another image under the name replaces it.
func TestPutImageAgainWritesNothing(t *testing.T) {
	db, err := Open(filepath.Join(t.TempDir(), "meta.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	t1 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	img := Image{Name: "app", Manifest: ocispec.Descriptor{MediaType: ocispec.MediaTypeImageManifest, Digest: digest.FromString("m1"), Size: 10}, Snapshot: "s1", Created: t1}
	if err := db.PutImage(img); err != nil {
		t.Fatal(err)
	}
	img.Created = t1.Add(time.Hour)
	if err := db.PutImage(img); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.Image("app"); !got.Created.Equal(t1) {
		t.Errorf("after naming the same image again: Created %v, want %v (unchanged)", got.Created, t1)
	}
	img.Manifest.Digest = digest.FromString("m2")
	if err := db.PutImage(img); err != nil {
		t.Fatal(err)
	}
	if got, _ := db.Image("app"); got.Manifest.Digest != img.Manifest.Digest || !got.Created.Equal(img.Created) {
		t.Errorf("after naming another image: %v %v, want %v %v", got.Manifest.Digest, got.Created, img.Manifest.Digest, img.Created)
	}
}
