package export

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/builder-dev/builder/cache"
	"github.com/builder-dev/builder/exporter"
	"github.com/builder-dev/builder/internal/testutil/statedir"
	"github.com/builder-dev/builder/output"
	dockerspec "github.com/moby/docker-image-spec/specs-go/v1"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// TestAssembleLeasesBeforeRecording: an image assembled outside a staged
// export (a platform's in the multi-platform pipeline) has its blobs
// leased for the build before their records are written: until leased,
// a new layer's blob is named by nothing, and a record written first
// could name a blob a prune in another process removed meanwhile.
func TestAssembleLeasesBeforeRecording(t *testing.T) {
	dir := t.TempDir()
	db, store, snaps := statedir.Open(t, dir)
	if err := snaps.Prepare("l1"); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(snaps.FS("l1"), "one"), []byte("1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := snaps.Commit("l1"); err != nil {
		t.Fatal(err)
	}
	if err := db.PutSnapshot(cache.Snapshot{ID: "l1", Description: "step l1", Created: time.Now()}); err != nil {
		t.Fatal(err)
	}
	var cfg dockerspec.DockerOCIImage
	cfg.OS, cfg.Architecture = "linux", "amd64"
	cfg.History = []ocispec.History{{CreatedBy: "COPY one /one"}}

	a := newAssembler(Stores{DB: db, Content: store, Snapshots: snaps}, Options{}, job{top: "l1", config: cfg})
	recorded := func() bool {
		s, err := db.Snapshot("l1")
		if err != nil {
			t.Fatal(err)
		}
		return len(s.Blobs) > 0
	}
	leased := false
	a.lease = func(_ context.Context, img *exporter.Image) error {
		leased = true
		if recorded() {
			t.Error("the layer's blob was recorded before the image was leased")
		}
		return nil
	}
	if _, err := a.assemble(t.Context(), output.Spec{Type: output.Image}); err != nil {
		t.Fatal(err)
	}
	if !leased || !recorded() {
		t.Errorf("after assemble: leased %v, layer's blob recorded %v; want both", leased, recorded())
	}
}
