package content

import (
	"errors"
	"os"
	"strings"
	"sync"
	"testing"

	"github.com/opencontainers/go-digest"
)

// syncCalls replaces syncFile and syncDir for a test: file syncs call
// onFile (under a lock), directory syncs are counted.
func syncCalls(t *testing.T, onFile func(f *os.File) error) (dirSyncs *int) {
	t.Helper()
	var mu sync.Mutex
	n := 0
	oldFile, oldDir := syncFile, syncDir
	t.Cleanup(func() { syncFile, syncDir = oldFile, oldDir })
	syncFile = func(f *os.File) error {
		mu.Lock()
		defer mu.Unlock()
		if err := onFile(f); err != nil {
			return err
		}
		return oldFile(f)
	}
	syncDir = func(dir string) error {
		mu.Lock()
		n++
		mu.Unlock()
		return oldDir(dir)
	}
	return &n
}

// batchOfThree adds three blobs to a new batch of s: two by WriteBytes,
// one by a Writer.
func batchOfThree(t *testing.T, s *Store) (*Batch, []digest.Digest) {
	t.Helper()
	b := s.NewBatch()
	t.Cleanup(b.Close)
	var ds []digest.Digest
	for _, p := range []string{"config", "manifest"} {
		d, err := b.WriteBytes(t.Context(), []byte(p))
		if err != nil {
			t.Fatal(err)
		}
		ds = append(ds, d)
	}
	w, err := s.Writer(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	w.Write([]byte("layer"))
	d, size, err := w.CommitTo(b, "", -1)
	if err != nil || size != 5 || d != digest.FromString("layer") {
		t.Fatalf("CommitTo = %s, %d, %v; want %s, 5", d, size, err, digest.FromString("layer"))
	}
	return b, append(ds, d)
}

// TestBatchCommit: a batch's blobs are not in the store before Commit,
// every file is synced before the first rename, and the blobs directory
// is synced once for all of them.
func TestBatchCommit(t *testing.T) {
	s := newStore(t)
	var ds []digest.Digest
	synced := 0
	dirSyncs := syncCalls(t, func(*os.File) error {
		synced++
		for _, d := range ds {
			if s.Exists(d) {
				t.Errorf("blob %s in the store before every file of the batch was synced", d)
			}
		}
		return nil
	})
	b, ds := batchOfThree(t, s)
	for _, d := range ds {
		if s.Exists(d) {
			t.Errorf("blob %s in the store before Commit", d)
		}
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	for _, d := range ds {
		if got, err := s.ReadAll(d); err != nil || digest.FromBytes(got) != d {
			t.Errorf("after Commit, ReadAll(%s) = %q, %v", d, got, err)
		}
	}
	if synced != 3 || *dirSyncs != 1 {
		t.Errorf("Commit of 3 blobs: %d file syncs, %d directory syncs; want 3 and 1", synced, *dirSyncs)
	}
	if left := ingestFiles(t, s); len(left) != 0 {
		t.Errorf("ingest files left after Commit: %v", left)
	}
	if err := b.Commit(); err == nil {
		t.Error("a second Commit of a batch succeeded")
	}
}

// TestBatchSyncFails: when one file of a batch cannot be synced, no blob
// of it enters the store and its ingest files go.
func TestBatchSyncFails(t *testing.T) {
	s := newStore(t)
	calls := 0
	syncCalls(t, func(*os.File) error {
		calls++
		if calls == 2 {
			return errors.New("injected fsync failure")
		}
		return nil
	})
	b, ds := batchOfThree(t, s)
	if err := b.Commit(); err == nil {
		t.Fatal("Commit succeeded with a failed fsync")
	}
	if err := b.Commit(); err == nil {
		t.Error("a Commit after a failed one succeeded")
	}
	b.Close()
	for _, d := range ds {
		if s.Exists(d) {
			t.Errorf("blob %s in the store after a failed Commit", d)
		}
	}
	if left := ingestFiles(t, s); len(left) != 0 {
		t.Errorf("ingest files left after a failed Commit: %v", left)
	}
}

// TestBatchExistingBlobSyncsDir: a blob found already stored (another
// writer's, renamed but maybe not yet synced by it) still gets its
// directory synced before Commit returns, so a record may name it.
func TestBatchExistingBlobSyncsDir(t *testing.T) {
	s := newStore(t)
	if _, err := s.WriteBytes(t.Context(), []byte("config")); err != nil {
		t.Fatal(err)
	}
	dirSyncs := syncCalls(t, func(*os.File) error { return nil })
	b := s.NewBatch()
	defer b.Close()
	if _, err := b.WriteBytes(t.Context(), []byte("config")); err != nil {
		t.Fatal(err)
	}
	if err := b.Commit(); err != nil {
		t.Fatal(err)
	}
	if *dirSyncs != 1 {
		t.Errorf("Commit of a batch that found its blob stored: %d directory syncs, want 1", *dirSyncs)
	}
}

// TestBatchKnownBlobNoSync: found blobs the caller knows durable (a
// record names them: an unchanged export) cost no directory sync; one not
// known still does.
func TestBatchKnownBlobNoSync(t *testing.T) {
	s := newStore(t)
	for _, p := range []string{"config", "manifest"} {
		if _, err := s.WriteBytes(t.Context(), []byte(p)); err != nil {
			t.Fatal(err)
		}
	}
	dirSyncs := syncCalls(t, func(*os.File) error { return nil })
	commit := func(known ...string) {
		t.Helper()
		b := s.NewBatch()
		defer b.Close()
		for _, p := range []string{"config", "manifest"} {
			if _, err := b.WriteBytes(t.Context(), []byte(p)); err != nil {
				t.Fatal(err)
			}
		}
		for _, k := range known {
			b.Known(digest.FromString(k))
		}
		if err := b.Commit(); err != nil {
			t.Fatal(err)
		}
	}
	commit("config", "manifest")
	if *dirSyncs != 0 {
		t.Errorf("a batch of found blobs all known durable: %d directory syncs, want 0", *dirSyncs)
	}
	commit("manifest")
	if *dirSyncs != 1 {
		t.Errorf("a batch with one found blob not known durable: %d directory syncs, want 1", *dirSyncs)
	}
}

// TestWriteFoundBlobSyncsDir: WriteBlob and WriteBlobSized that find
// their blob already stored (a batch's, installed and released without
// its Commit, so renamed but not synced) sync its directory before they
// return, since their caller may then record the blob.
func TestWriteFoundBlobSyncsDir(t *testing.T) {
	s := newStore(t)
	b := s.NewBatch()
	d, err := b.WriteBytes(t.Context(), []byte("layer"))
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Install(); err != nil {
		t.Fatal(err)
	}
	b.Close()
	dirSyncs := syncCalls(t, func(*os.File) error { return nil })
	if _, _, err := s.WriteBlob(t.Context(), strings.NewReader("layer"), d); err != nil {
		t.Fatal(err)
	}
	if *dirSyncs != 1 {
		t.Errorf("WriteBlob of a blob found stored: %d directory syncs, want 1", *dirSyncs)
	}
	if err := s.WriteBlobSized(t.Context(), strings.NewReader("layer"), d, 5); err != nil {
		t.Fatal(err)
	}
	if *dirSyncs != 2 {
		t.Errorf("WriteBlobSized of a blob found stored: %d directory syncs in all, want 2", *dirSyncs)
	}
}
