package exporter_test

import (
	"bufio"
	"os"
	"os/exec"
	"testing"
	"time"

	"github.com/builder-dev/builder/cache"
	"github.com/builder-dev/builder/exporter"
	"github.com/builder-dev/builder/internal/testutil/statedir"
	"github.com/opencontainers/go-digest"
)

// openExporter is newExporter over the state in dir.
func openExporter(t *testing.T, dir string) *exporter.Exporter {
	t.Helper()
	db, store, snaps := statedir.Open(t, dir)
	return &exporter.Exporter{DB: db, Content: store, Snapshots: snaps}
}

// TestAssembleRecordsInOneTransaction: the records of the blobs an
// assembly makes (two layers here) are written in one transaction, after
// the blobs are in the store.
func TestAssembleRecordsInOneTransaction(t *testing.T) {
	e := newExporter(t)
	top, cfg := twoLayers(t, e, time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC))
	before := e.DB.Writes()
	img, err := e.Assemble(t.Context(), top, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if n := e.DB.Writes() - before; n != 1 {
		t.Errorf("assembling an image of two new layers took %d write transactions, want 1", n)
	}
	checkRecordedBlobs(t, e, 2)
	for _, l := range img.Layers {
		if !e.Content.Exists(l.Digest) {
			t.Errorf("layer %s of the image is not in the store", l.Digest)
		}
	}
}

// checkRecordedBlobs checks that the snapshot records name want blobs in
// all, each in the content store with the content its digest names.
func checkRecordedBlobs(t *testing.T, e *exporter.Exporter, want int) {
	t.Helper()
	recs, err := e.DB.Snapshots()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, s := range recs {
		for k, d := range s.Blobs {
			n++
			if raw, err := e.Content.ReadAll(d.Digest); err != nil || digest.FromBytes(raw) != d.Digest {
				t.Errorf("snapshot %s names blob %s (%s), which the store does not hold whole: %v", s.ID, d.Digest, k, err)
			}
		}
	}
	if n != want {
		t.Errorf("the snapshot records name %d blobs, want %d", n, want)
	}
}

const killedEnv = "BUILDER_TEST_EXPORT_KILLED"

// TestKilledBeforeRecords kills an assembly between its blobs' commit and
// its records' transaction: the store stays consistent (no record, every
// blob whole), and the next assembly records the blobs.
func TestKilledBeforeRecords(t *testing.T) {
	made := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	if dir := os.Getenv(killedEnv); dir != "" {
		e := openExporter(t, dir)
		top, cfg := twoLayers(t, e, made)
		exporter.SetBeforeRecords(func() {
			os.Stdout.WriteString("records\n")
			select {}
		})
		_, err := e.Assemble(t.Context(), top, cfg)
		t.Fatalf("Assemble returned (%v) with its records' transaction hanging", err)
	}
	dir := t.TempDir()
	cmd := exec.Command(os.Args[0], "-test.run=^TestKilledBeforeRecords$", "-test.count=1")
	cmd.Env = append(os.Environ(), killedEnv+"="+dir)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	line, _ := bufio.NewReader(out).ReadString('\n')
	cmd.Process.Kill()
	cmd.Wait()
	if line != "records\n" {
		t.Fatalf("the assembly printed %q, want it to reach its records", line)
	}
	e := openExporter(t, dir)
	checkRecordedBlobs(t, e, 0)
	stored := 0
	err = e.Content.Walk(func(d digest.Digest, _ int64) error {
		stored++
		if raw, err := e.Content.ReadAll(d); err != nil || digest.FromBytes(raw) != d {
			t.Errorf("blob %s is not whole after the kill: %v", d, err)
		}
		return nil
	})
	if err != nil || stored != 4 {
		t.Errorf("after the kill: %d blobs in the store (%v), want the 4 of the image (2 layers, config, manifest)", stored, err)
	}
	img, err := e.Assemble(t.Context(), "l2", twoLayerConfig())
	if err != nil {
		t.Fatal(err)
	}
	checkRecordedBlobs(t, e, 2)
	if !e.Content.Exists(img.Manifest.Digest) {
		t.Errorf("manifest %s is not in the store", img.Manifest.Digest)
	}
}

// TestAssembleStagedFinish: a staged image's blobs can be read before
// Finish, but no record names them until Finish, which writes the
// records and the image's name in one transaction.
func TestAssembleStagedFinish(t *testing.T) {
	e := newExporter(t)
	top, cfg := twoLayers(t, e, time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC))
	img, err := e.AssembleStaged(t.Context(), top, cfg, exporter.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Release(img)
	for _, d := range append([]digest.Digest{img.Manifest.Digest}, img.Layers[0].Digest, img.Layers[1].Digest) {
		if _, err := e.Content.ReadAll(d); err != nil {
			t.Errorf("blob %s of a staged image cannot be read: %v", d, err)
		}
	}
	checkRecordedBlobs(t, e, 0)
	before := e.DB.Writes()
	rec := cache.Image{Name: "example.com/a:latest", Manifest: img.Manifest, Snapshot: top, Created: time.Now().UTC()}
	if err := e.Finish(img, []cache.Image{rec}); err != nil {
		t.Fatal(err)
	}
	if n := e.DB.Writes() - before; n != 1 {
		t.Errorf("Finish with a name took %d write transactions, want 1", n)
	}
	checkRecordedBlobs(t, e, 2)
	rec.Name = "example.com/b:latest"
	if err := e.Finish(img, []cache.Image{rec}); err != nil {
		t.Fatal(err)
	}
	for _, n := range []string{"example.com/a:latest", "example.com/b:latest"} {
		if got, err := e.DB.Image(n); err != nil || got.Manifest.Digest != img.Manifest.Digest {
			t.Errorf("Image(%s) = %v, %v; want manifest %s", n, got.Manifest.Digest, err, img.Manifest.Digest)
		}
	}
}

// TestAssembleStagedRelease: a staged image released records nothing,
// and cannot be named after.
func TestAssembleStagedRelease(t *testing.T) {
	e := newExporter(t)
	top, cfg := twoLayers(t, e, time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC))
	img, err := e.AssembleStaged(t.Context(), top, cfg, exporter.Options{})
	if err != nil {
		t.Fatal(err)
	}
	e.Release(img)
	rec := cache.Image{Name: "example.com/a:latest", Manifest: img.Manifest, Snapshot: top}
	if err := e.Finish(img, []cache.Image{rec}); err == nil {
		t.Error("Finish of a released image named it")
	}
	checkRecordedBlobs(t, e, 0)
	if _, err := e.DB.Image(rec.Name); err == nil {
		t.Errorf("a released image got the name %s", rec.Name)
	}
	// The layers' locks went with it: assembling again does not wait.
	if _, err := e.AssembleWith(t.Context(), top, cfg, exporter.Options{}); err != nil {
		t.Fatal(err)
	}
	checkRecordedBlobs(t, e, 2)
}
