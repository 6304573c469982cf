package exporter

import (
	"context"
	"errors"
	"slices"
	"strings"
	"sync"

	"github.com/builder-dev/builder/cache"
	"github.com/builder-dev/builder/cache/content"
	"github.com/builder-dev/builder/cache/coord"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// flush gathers the writes of one assembly and makes them durable
// together: every blob (layers, config, manifest) first, in one content
// batch (their files synced at once, each directory once), then every
// record naming them, and the image's names, in one database
// transaction. The records come last so that a record names only durable
// blobs: a crash before the batch's Commit returns leaves blobs that no
// record names (ingest debris, or a blob a later build finds by digest),
// never a record of a missing blob. Between the two steps of the batch
// (Install, Commit) the blobs can be read whole, which is all a push
// needs, so a push can go while the rest is made durable.
type flush struct {
	db    *cache.DB
	blobs *content.Batch
	mu    sync.Mutex
	// done is set once the records are written or the flush closed;
	// err then says why they were not, and what names no image can get.
	done bool
	err  error
	// updates add the blobs made to their snapshots' records.
	updates map[string]func(*cache.Snapshot)
	// manifest and config are the image's, for an unchanged export (see
	// commit).
	manifest, config digest.Digest
	// locks are the layer locks taken for the blobs of the batch: held
	// until their records are written, so that a build in another
	// process waiting for one finds the blob in the record.
	locks []*coord.KeyLock
}

func (e *Exporter) newFlush() *flush {
	return &flush{db: e.DB, blobs: e.Content.NewBatch(), updates: map[string]func(*cache.Snapshot){}}
}

// remember adds blob d of snapshot id, under key, to the records the
// flush writes, and its diff_id if setDiffID.
func (f *flush) remember(id, key string, d ocispec.Descriptor, diffID digest.Digest, setDiffID bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	before := f.updates[id]
	f.updates[id] = func(s *cache.Snapshot) {
		if before != nil {
			before(s)
		}
		if s.Blobs == nil {
			s.Blobs = map[string]ocispec.Descriptor{}
		}
		s.Blobs[key] = d
		if setDiffID {
			s.DiffID = diffID
		}
	}
}

var errReleased = errors.New("the image's blobs were released unrecorded")

// beforeRecords, when set, runs between the blobs' commit and the
// records' transaction (tests stop a process there).
var beforeRecords func()

// finish makes the blobs durable, then writes the records naming them
// and names, and releases the locks. Once finished, it writes names only.
func (f *flush) finish(names []cache.Image) error {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.done {
		if f.err != nil {
			return f.err
		}
		return f.db.PutExport(nil, names)
	}
	f.err = f.commit(names)
	f.done = true // finished, well or not: closeLocked keeps f.err
	f.closeLocked()
	return f.err
}

func (f *flush) commit(names []cache.Image) error {
	// A manifest a name's record already holds is durable, and so is its
	// config (the export that recorded it committed both first): an
	// unchanged export (a no-op build) then syncs no directory.
	for _, n := range names {
		if img, err := f.db.Image(n.Name); err == nil && f.manifest != "" && img.Manifest.Digest == f.manifest {
			f.blobs.Known(f.manifest, f.config)
			break
		}
	}
	if err := f.blobs.Commit(); err != nil {
		return err
	}
	if beforeRecords != nil {
		beforeRecords()
	}
	return f.db.PutExport(f.updates, names)
}

// close drops what was not committed and releases the locks.
func (f *flush) close() {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.closeLocked()
}

func (f *flush) closeLocked() {
	if !f.done && f.err == nil {
		f.err = errReleased
	}
	f.done = true
	f.blobs.Close()
	for _, l := range f.locks {
		l.Unlock()
	}
	f.locks = nil
}

// layerLockKey names the lock of the blob of snapshot id under key.
func layerLockKey(id, key string) digest.Digest {
	return digest.FromString("layer\x00" + id + "\x00" + key)
}

// lockLayers locks the layers whose blob as o says is yet to be made,
// holding the locks in f, and returns layers with the records read again
// once locked (what a build that held a lock wrote). The locks are taken
// one by one in the order of their keys, the same in every process, so
// that two processes each holding some and waiting for more never wait
// for each other.
func (e *Exporter) lockLayers(ctx context.Context, f *flush, layers []cache.Snapshot, base map[string]bool, o Options) ([]cache.Snapshot, error) {
	type want struct {
		key digest.Digest
		i   int
	}
	var todo []want
	for i, s := range layers {
		epoch := o.SourceDateEpoch
		if base[s.ID] {
			epoch = nil
		}
		key := memoKey(o.compression(), o.Level, epoch)
		if d, ok := s.Blobs[key]; ok && e.Content.Exists(d.Digest) {
			continue
		}
		todo = append(todo, want{layerLockKey(s.ID, key), i})
	}
	slices.SortFunc(todo, func(a, b want) int { return strings.Compare(string(a.key), string(b.key)) })
	layers = slices.Clone(layers)
	for _, w := range todo {
		lock, err := e.DB.LockKey(ctx, w.key, nil)
		if err != nil {
			return nil, err
		}
		f.locks = append(f.locks, lock)
		if fresh, err := e.DB.Snapshot(layers[w.i].ID); err == nil {
			layers[w.i] = fresh
		}
	}
	return layers, nil
}
