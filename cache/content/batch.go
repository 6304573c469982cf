package content

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	"github.com/opencontainers/go-digest"
	"golang.org/x/sync/errgroup"
)

// Batch commits several blobs together, so that an export of many small
// blobs pays for their durability once rather than blob after blob:
// Commit fsyncs every ingest file at once (in parallel, which the file
// system can fold into one journal commit), renames each into place, and
// then fsyncs the blobs directory once. A blob is in the store (visible,
// durable) only once Commit returned; until then nothing of the batch is
// under blobs/, so a killed process leaves only ingest debris.
//
// A Batch is safe for concurrent use. Always Close it: that drops what an
// unsuccessful or missing Commit left.
type Batch struct {
	s       *Store
	mu      sync.Mutex
	pending []pendingBlob
	// dirs are the blobs directories Commit must sync: those it renames
	// into, and those where the batch found a blob already (another
	// writer's rename, which that writer may not have synced yet) unless
	// the caller knows that blob durable (a record names it).
	dirs  map[string]bool
	found map[digest.Digest]bool // found blob -> known durable
	// installed is set once Install renamed the blobs, done once the
	// batch is committed or closed.
	installed, done bool
}

// pendingBlob is a written, verified ingest file waiting for Commit.
type pendingBlob struct {
	f    *os.File
	dgst digest.Digest
	size int64
}

// NewBatch starts a batch of blob commits.
func (s *Store) NewBatch() *Batch {
	return &Batch{s: s, dirs: map[string]bool{}, found: map[digest.Digest]bool{}}
}

// Known tells the batch that blobs it found already stored are durable
// (a record names them, and records name only durable blobs), so Commit
// need not sync their directory: an unchanged export then syncs nothing.
func (b *Batch) Known(ds ...digest.Digest) {
	b.mu.Lock()
	defer b.mu.Unlock()
	for _, d := range ds {
		if _, ok := b.found[d]; ok {
			b.found[d] = true
		}
	}
}

// CommitTo finishes w like Commit, but leaves making the blob durable and
// visible to b's Commit. It returns the blob's digest and size. After
// CommitTo, successful or not, the Writer is finished.
func (w *Writer) CommitTo(b *Batch, expected digest.Digest, expectedSize int64) (digest.Digest, int64, error) {
	if w.done {
		return "", 0, errWriterDone
	}
	w.done = true
	d, err := w.verify(expected, expectedSize)
	if err != nil {
		w.f.Close()
		os.Remove(w.f.Name())
		return "", 0, err
	}
	if err := b.add(pendingBlob{f: w.f, dgst: d, size: w.size}); err != nil {
		w.f.Close()
		os.Remove(w.f.Name())
		return "", 0, err
	}
	return d, w.size, nil
}

// WriteBytes adds p to the batch and returns its digest.
func (b *Batch) WriteBytes(ctx context.Context, p []byte) (digest.Digest, error) {
	d := digest.FromBytes(p)
	if size, err := b.s.Info(d); err == nil && size == int64(len(p)) {
		b.mu.Lock()
		if _, ok := b.found[d]; !ok {
			b.found[d] = false
		}
		b.mu.Unlock()
		return d, nil
	}
	w, err := b.s.Writer(ctx)
	if err != nil {
		return "", err
	}
	defer w.Close()
	if _, err := w.Write(p); err != nil {
		return "", fmt.Errorf("writing blob %s: %w", d, err)
	}
	_, _, err = w.CommitTo(b, d, int64(len(p)))
	return d, err
}

func (b *Batch) add(p pendingBlob) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done || b.installed {
		return errors.New("adding a blob to a content batch already installed, committed or closed")
	}
	b.pending = append(b.pending, p)
	return nil
}

// syncFile is f.Sync; tests replace it to fail or stop a commit there.
var syncFile = (*os.File).Sync

// Commit makes every blob of the batch durable and visible: Install, then
// each blobs directory fsynced once. Only after it returns may a record
// name the batch's blobs. Close removes what an error left.
func (b *Batch) Commit() error {
	if err := b.Install(); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done = true
	for d, known := range b.found {
		if !known {
			b.dirs[filepath.Dir(b.s.Path(d))] = true
		}
	}
	// The names last: once a directory is synced its renames survive a
	// crash, and so may a record naming them.
	for dir := range b.dirs {
		if err := syncDir(dir); err != nil {
			return fmt.Errorf("committing blobs: syncing %s: %w", dir, err)
		}
	}
	return nil
}

// Install makes the blobs of the batch readable in the store, each whole:
// ingest files fsynced (all at once), then renamed into place. Their names
// are durable only once Commit returns, so a record must wait for that; a
// reader of the content (a push) need not. On error no blob of the batch
// was renamed unless its file was synced.
func (b *Batch) Install() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.done {
		return errors.New("content batch already committed or closed")
	}
	if b.installed {
		return nil
	}
	defer b.dropPending()
	if err := b.install(); err != nil {
		b.done = true // a failed batch commits nothing more
		return err
	}
	b.installed = true
	return nil
}

func (b *Batch) install() error {
	// Data first: a rename must never make a blob of a file whose bytes
	// a crash could still lose.
	var g errgroup.Group
	g.SetLimit(16)
	for _, p := range b.pending {
		g.Go(func() error {
			if err := syncFile(p.f); err != nil {
				return fmt.Errorf("committing blob %s: %w", p.dgst, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	for len(b.pending) > 0 {
		p := b.pending[0]
		b.pending = b.pending[1:] // install closes or removes its file either way
		if err := b.s.install(p.f, p.dgst, p.size); err != nil {
			return err
		}
		b.dirs[filepath.Dir(b.s.Path(p.dgst))] = true
	}
	return nil
}

// Close drops the ingest files of blobs not committed.
func (b *Batch) Close() {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.done = true
	b.dropPending()
}

func (b *Batch) dropPending() {
	for _, p := range b.pending {
		p.f.Close()
		os.Remove(p.f.Name())
	}
	b.pending = nil
}
