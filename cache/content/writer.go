package content

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/opencontainers/go-digest"
)

var errWriterDone = errors.New("content writer already committed or closed")

// Writer writes one blob into an ingest file. Nothing is visible under
// blobs/ until Commit succeeds. A Writer is not safe for concurrent use;
// several Writers of the same content are.
//
// Always Close a Writer; after a successful Commit, Close does nothing.
type Writer struct {
	s        *Store
	f        *os.File
	digester digest.Digester
	size     int64
	done     bool
}

// Writer starts a new blob in a fresh ingest file.
func (s *Store) Writer(ctx context.Context) (*Writer, error) {
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	f, err := os.CreateTemp(filepath.Join(s.root, ingestDir), "ingest-*")
	if err != nil {
		return nil, fmt.Errorf("starting blob write: %w", err)
	}
	return &Writer{s: s, f: f, digester: digest.Canonical.Digester()}, nil
}

// Write appends p to the blob.
func (w *Writer) Write(p []byte) (int, error) {
	if w.done {
		return 0, errWriterDone
	}
	n, err := w.f.Write(p)
	w.digester.Hash().Write(p[:n])
	w.size += int64(n)
	return n, err
}

// Size returns the number of bytes written so far.
func (w *Writer) Size() int64 { return w.size }

// Commit makes the written bytes a blob. expected may be "" to accept
// whatever was written, and expectedSize may be negative to skip the size
// check; otherwise a mismatch gives an error wrapping ErrDigestMismatch or
// ErrSizeMismatch and nothing is stored. The data is fsynced, renamed into
// place and the directory fsynced (a batch of one: see Batch). If the blob
// already exists the ingest file is simply dropped. It returns the blob's
// digest and size.
//
// After Commit, successful or not, the Writer is finished.
func (w *Writer) Commit(expected digest.Digest, expectedSize int64) (digest.Digest, int64, error) {
	b := w.s.NewBatch()
	defer b.Close()
	d, size, err := w.CommitTo(b, expected, expectedSize)
	if err != nil {
		return "", 0, err
	}
	if err := b.Commit(); err != nil {
		return "", 0, err
	}
	return d, size, nil
}

// verify checks what was written against expected and expectedSize (see
// Commit) and returns its digest.
func (w *Writer) verify(expected digest.Digest, expectedSize int64) (digest.Digest, error) {
	if expected != "" {
		if err := checkDigest(expected); err != nil {
			return "", fmt.Errorf("committing blob: %w", err)
		}
	}
	if expectedSize >= 0 && w.size != expectedSize {
		return "", fmt.Errorf("committing blob %s: got %d bytes, want %d: %w", expected, w.size, expectedSize, ErrSizeMismatch)
	}
	d := w.digester.Digest()
	if expected != "" && d != expected {
		return "", fmt.Errorf("committing blob: got %s, want %s: %w", d, expected, ErrDigestMismatch)
	}
	return d, nil
}

// install puts the synced ingest file f in place as blob d of size bytes,
// or drops it when that blob is there already. The caller syncs the
// directory.
func (s *Store) install(f *os.File, d digest.Digest, size int64) error {
	ingest := f.Name()
	if err := f.Close(); err != nil {
		os.Remove(ingest)
		return fmt.Errorf("committing blob %s: %w", d, err)
	}
	target := s.Path(d)
	if fi, err := os.Stat(target); err == nil && fi.Mode().IsRegular() && fi.Size() == size {
		os.Remove(ingest)
		return nil // someone else stored it; drop our copy
	}
	if err := os.Chmod(ingest, 0o444); err != nil {
		os.Remove(ingest)
		return fmt.Errorf("committing blob %s: %w", d, err)
	}
	// rename(2) replaces atomically, so racing writers of the same digest
	// each install a complete, identical file.
	if err := os.Rename(ingest, target); err != nil {
		os.Remove(ingest)
		return fmt.Errorf("committing blob %s: %w", d, err)
	}
	return nil
}

// Close abandons an uncommitted write and removes its ingest file.
func (w *Writer) Close() error {
	if w.done {
		return nil
	}
	w.done = true
	cerr := w.f.Close()
	if err := os.Remove(w.f.Name()); err != nil {
		return fmt.Errorf("removing ingest file: %w", err)
	}
	return cerr
}

// WriteBlob stores what r yields and returns its digest and size. If
// expected is not empty the content must match it; when that blob already
// exists, r is not read at all.
func (s *Store) WriteBlob(ctx context.Context, r io.Reader, expected digest.Digest) (digest.Digest, int64, error) {
	if expected != "" {
		if err := checkDigest(expected); err != nil {
			return "", 0, err
		}
		if size, err := s.Info(expected); err == nil {
			return expected, size, s.syncFound(expected)
		}
	}
	w, err := s.Writer(ctx)
	if err != nil {
		return "", 0, err
	}
	defer w.Close()
	if _, err := io.Copy(w, &ctxReader{ctx: ctx, r: r}); err != nil {
		if expected != "" {
			return "", 0, fmt.Errorf("writing blob %s: %w", expected, err)
		}
		return "", 0, fmt.Errorf("writing blob: %w", err)
	}
	return w.Commit(expected, -1)
}

// WriteBlobSized stores blob expected of size bytes from r, reading at
// most one byte more than size: content that is longer, shorter or
// different is an error and nothing is stored. When the blob already
// exists, r is not read at all.
func (s *Store) WriteBlobSized(ctx context.Context, r io.Reader, expected digest.Digest, size int64) error {
	if err := checkDigest(expected); err != nil {
		return err
	}
	if size < 0 {
		return fmt.Errorf("writing blob %s: negative size %d", expected, size)
	}
	if s.Exists(expected) {
		return s.syncFound(expected)
	}
	w, err := s.Writer(ctx)
	if err != nil {
		return err
	}
	defer w.Close()
	if _, err := io.Copy(w, &ctxReader{ctx: ctx, r: io.LimitReader(r, size+1)}); err != nil {
		return fmt.Errorf("writing blob %s: %w", expected, err)
	}
	_, _, err = w.Commit(expected, size)
	return err
}

// syncFound syncs the directory of blob d, found already stored: another
// writer (a batch installed but not yet committed, or released) may have
// renamed it there without syncing, and the caller may record it once
// this returns, as it would a blob it wrote.
func (s *Store) syncFound(d digest.Digest) error {
	if err := syncDir(filepath.Dir(s.Path(d))); err != nil {
		return fmt.Errorf("writing blob %s: syncing its directory: %w", d, err)
	}
	return nil
}

// WriteBytes stores p and returns its digest.
func (s *Store) WriteBytes(ctx context.Context, p []byte) (digest.Digest, error) {
	d, _, err := s.WriteBlob(ctx, bytes.NewReader(p), digest.FromBytes(p))
	return d, err
}

// PruneIngest removes ingest files not modified for olderThan: debris of
// killed processes. Pick a generous age, since other processes sharing the
// store may still be writing theirs. It returns how many files it removed.
func (s *Store) PruneIngest(olderThan time.Duration) (int, error) {
	dir := filepath.Join(s.root, ingestDir)
	entries, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("pruning ingest files: %w", err)
	}
	cutoff := time.Now().Add(-olderThan)
	removed := 0
	var errs []error
	for _, e := range entries {
		fi, err := e.Info()
		if err != nil || !fi.ModTime().Before(cutoff) {
			continue
		}
		if err := os.Remove(filepath.Join(dir, e.Name())); err != nil && !os.IsNotExist(err) {
			errs = append(errs, err)
			continue
		}
		removed++
	}
	if len(errs) > 0 {
		return removed, fmt.Errorf("pruning ingest files: %w", errors.Join(errs...))
	}
	return removed, nil
}

// syncDir fsyncs a directory; tests replace it to count the calls.
var syncDir = func(dir string) error {
	f, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer f.Close()
	return f.Sync()
}

// ctxReader stops a copy when ctx is done.
type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (r *ctxReader) Read(p []byte) (int, error) {
	if err := r.ctx.Err(); err != nil {
		return 0, err
	}
	return r.r.Read(p)
}
