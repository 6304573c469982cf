package cache

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"path/filepath"
	"sort"
	"sync/atomic"
	"time"

	"github.com/builder-dev/builder/cache/coord"
	"github.com/builder-dev/builder/cache/internal/hintq"
	"github.com/builder-dev/builder/cache/internal/schema"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
)

var (
	bucketSnapshots = schema.Snapshots
	bucketKeys      = schema.Keys
	bucketLayers    = schema.Layers
	bucketImages    = schema.Images
	bucketMeta      = schema.Meta
)

// ErrNotFound is wrapped by lookups that find nothing.
var ErrNotFound = fs.ErrNotExist

// Snapshot is the record of one committed layer directory.
type Snapshot struct {
	ID     string `json:"id"`
	Parent string `json:"parent,omitempty"`
	// Empty is true when the layer changes nothing; it is not mounted, but
	// is exported as an (empty) layer, as BuildKit exports it.
	Empty bool `json:"empty,omitempty"`
	// DiffID is the digest of the uncompressed layer tar, once known.
	DiffID digest.Digest `json:"diffID,omitempty"`
	// Content digests the layer's files with their times left out, so
	// that a step which produced the same files again is known by it.
	Content digest.Digest `json:"content,omitempty"`
	// Blobs holds the compressed forms already in the content store, by media type.
	Blobs       map[string]ocispec.Descriptor `json:"blobs,omitempty"`
	Description string                        `json:"description,omitempty"`
	Created     time.Time                     `json:"created"`
	// LastUsed is when a build last used the snapshot (a cache hit on it or
	// on a snapshot above it, a result it produced, an image it exported);
	// zero means never since it was created.
	LastUsed time.Time `json:"lastUsed,omitzero"`
	// Size is the bytes the layer directory occupies, valid when Measured.
	// A committed layer never changes, so it is measured once.
	Size     int64 `json:"size,omitzero"`
	Measured bool  `json:"measured,omitzero"`
	// Counted is what this record adds to the state's running usage total
	// (Size plus its Blobs' sizes when it was last touched); deleting the
	// record subtracts it.
	Counted int64 `json:"counted,omitzero"`
}

// Used returns when s was last used, or created if never used since.
func (s Snapshot) Used() time.Time {
	if s.LastUsed.IsZero() {
		return s.Created
	}
	return s.LastUsed
}

// Image is a named image in the local store.
type Image struct {
	Name     string             `json:"name"`
	Manifest ocispec.Descriptor `json:"manifest"`
	// Snapshot is the top of the image's layer chain on disk.
	Snapshot string    `json:"snapshot"`
	Created  time.Time `json:"created"`
	// Platforms are, when Manifest is an image index (a multi-platform
	// build), each platform's image; Snapshot is then the host's (or the
	// first platform's).
	Platforms []PlatformImage `json:"platforms,omitempty"`
}

// PlatformImage is one platform's image of an index in the local store.
type PlatformImage struct {
	Platform ocispec.Platform   `json:"platform"`
	Manifest ocispec.Descriptor `json:"manifest"`
	Snapshot string             `json:"snapshot"`
}

// DB is the metadata database of one state directory. It keeps the bbolt
// file open only while no other process wants it (see handle.go), so that
// builds in several processes share the state directory, and keeps a lease
// (see lease.go) on what this process uses until Close.
type DB struct {
	q      *coord.Queue
	path   string
	root   string
	leases *coord.Leases
	ids    idBlock
	// writes counts this DB's write transactions (see Writes), holds its
	// Holds.
	writes, holds atomic.Uint64
	hints         hintq.Queue
}

// LockKey locks key across processes (coord.LockKey) while this process
// computes what the key stands for.
func (d *DB) LockKey(ctx context.Context, key digest.Digest, waiting func(holder string)) (*coord.KeyLock, error) {
	return coord.LockKey(ctx, filepath.Join(d.root, "locks"), key, waiting)
}

// Open opens (creating if needed) the database at path, in its state
// directory. onWait is called once if a transaction has to wait long for
// another process (one that holds the database for a long while, such as
// a builder from before it was shared, or a large prune).
func Open(path string, onWait func()) (*DB, error) {
	d, err := OpenUnleased(path, onWait)
	if err != nil {
		return nil, err
	}
	// Made at once, before anything else: State.Open's cleanup spares
	// what others make while they hold a lease.
	if _, err = d.leases.Own(); err != nil {
		d.q.Close()
		return nil, err
	}
	return d, nil
}

// OpenUnleased is Open without this DB's own lease, for a database no GC
// reads: a remote build's client keeps one of file digests (FileSums)
// only, and would make and remove a lease file for nothing. A lookup in
// it makes the lease when first needed.
func OpenUnleased(path string, onWait func()) (*DB, error) {
	q, err := coord.OpenQueue(path, onWait)
	if err != nil {
		return nil, err
	}
	d := &DB{q: q, path: path, root: filepath.Dir(path), leases: &coord.Leases{Dir: filepath.Join(filepath.Dir(path), "leases")}}
	if err := d.init(); err != nil {
		q.Close()
		return nil, fmt.Errorf("initialising metadata database %s: %w", path, err)
	}
	return d, nil
}

var buckets = [][]byte{bucketSnapshots, bucketKeys, bucketLayers, bucketImages, bucketMeta}

// init creates the buckets, writing only when one is missing: a write
// costs an fsync every process would pay.
func (d *DB) init() error {
	missing := false
	err := d.view(func(tx *bolt.Tx) error {
		for _, name := range buckets {
			missing = missing || tx.Bucket(name) == nil
		}
		return nil
	})
	if err != nil || !missing {
		return err
	}
	return d.update(func(tx *bolt.Tx) error {
		for _, name := range buckets {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	})
}

// Close writes the queued hints, then releases the database and this DB's
// own lease.
func (d *DB) Close() error {
	err := d.FlushHints()
	if qerr := d.q.Close(); err == nil {
		err = qerr
	}
	if lerr := d.ReleaseOwnLease(); err == nil {
		err = lerr
	}
	return err
}

func get[T any](d *DB, bucket []byte, key string) (T, error) {
	var v T
	err := d.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket).Get([]byte(key))
		if b == nil {
			return fmt.Errorf("%s %s: %w", bucket, key, ErrNotFound)
		}
		return json.Unmarshal(b, &v)
	})
	return v, err
}

func put(tx *bolt.Tx, bucket []byte, key string, v any) error { return schema.Put(tx, bucket, key, v) }

// PutSnapshot records a committed snapshot.
func (d *DB) PutSnapshot(s Snapshot) error {
	return d.update(func(tx *bolt.Tx) error { return put(tx, bucketSnapshots, s.ID, s) })
}

// UpdateSnapshot changes the record of id in one transaction, so that
// what another process changed in it meanwhile is kept.
func (d *DB) UpdateSnapshot(id string, fn func(*Snapshot)) error {
	return d.update(func(tx *bolt.Tx) error { return updateSnapshot(tx, id, fn) })
}

func updateSnapshot(tx *bolt.Tx, id string, fn func(*Snapshot)) error {
	raw := tx.Bucket(bucketSnapshots).Get([]byte(id))
	if raw == nil {
		return fmt.Errorf("snapshot %s: %w", id, ErrNotFound)
	}
	var s Snapshot
	if err := json.Unmarshal(raw, &s); err != nil {
		return fmt.Errorf("snapshot %s: %w", id, err)
	}
	fn(&s)
	return put(tx, bucketSnapshots, id, s)
}

// Snapshot returns the record of id.
func (d *DB) Snapshot(id string) (Snapshot, error) { return get[Snapshot](d, bucketSnapshots, id) }

// Chain returns id's snapshot and its ancestors, the top-most first.
func (d *DB) Chain(id string) ([]Snapshot, error) {
	var chain []Snapshot
	err := d.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketSnapshots)
		for cur := id; cur != ""; {
			raw := b.Get([]byte(cur))
			if raw == nil {
				return fmt.Errorf("snapshot %s (in the chain of %s): %w", cur, id, ErrNotFound)
			}
			var s Snapshot
			if err := json.Unmarshal(raw, &s); err != nil {
				return fmt.Errorf("snapshot %s: %w", cur, err)
			}
			chain = append(chain, s)
			cur = s.Parent
			if len(chain) > 10000 {
				return fmt.Errorf("snapshot chain of %s loops", id)
			}
		}
		return nil
	})
	return chain, err
}

// Snapshots lists every snapshot record.
func (d *DB) Snapshots() ([]Snapshot, error) {
	var all []Snapshot
	err := each(d, bucketSnapshots, func(_ string, s Snapshot) { all = append(all, s) })
	return all, err
}

// each calls fn on every record of bucket, decoded, in key order.
func each[T any](d *DB, bucket []byte, fn func(key string, v T)) error {
	return d.view(func(tx *bolt.Tx) error {
		return tx.Bucket(bucket).ForEach(func(k, raw []byte) error {
			var v T
			if err := json.Unmarshal(raw, &v); err != nil {
				return fmt.Errorf("%s %s: %w", bucket, k, err)
			}
			fn(string(k), v)
			return nil
		})
	})
}

// Result is what a cache key resolved to.
type Result struct {
	Snapshot string    `json:"snapshot"`
	Created  time.Time `json:"created"`
	// LastUsed is when a build last hit or produced this key.
	LastUsed time.Time `json:"lastUsed,omitzero"`
}

// Used returns when r was last used, or created if never used since.
func (r Result) Used() time.Time {
	if r.LastUsed.IsZero() {
		return r.Created
	}
	return r.LastUsed
}

// Lookup returns the result recorded for a cache key, and adds it to the
// lease of ctx's build (see lease.go).
func (d *DB) Lookup(ctx context.Context, key digest.Digest) (Result, error) {
	lease, err := d.leaseFor(ctx)
	if err != nil {
		return Result{}, err
	}
	var r Result
	err = d.Hold(func() error {
		var err error
		if r, err = get[Result](d, bucketKeys, key.String()); err != nil {
			return err
		}
		if err := lease.Add(coord.KindKey, key.String()); err != nil {
			return err
		}
		return lease.Add(coord.KindSnapshot, r.Snapshot)
	})
	return r, err
}

// Record stores the result of a cache key.
func (d *DB) Record(key digest.Digest, r Result) error { return d.RecordStep(nil, r, key) }

// RecordStep stores a step's result under each of keys and, when snap is
// not nil, the record of the snapshot the step made, in one transaction:
// each write transaction costs two fsyncs, and a crash cannot leave a key
// naming a snapshot without its record. The caller has made the layer
// durable (snapshot Commit) before.
func (d *DB) RecordStep(snap *Snapshot, r Result, keys ...digest.Digest) error {
	return d.RecordSteps([]Step{{Snapshot: snap, Result: r, Keys: keys}})
}

// Step is one step's records for RecordSteps: RecordStep's arguments.
type Step struct {
	Snapshot *Snapshot
	Result   Result
	Keys     []digest.Digest
}

// RecordSteps is RecordStep for several steps in one transaction (one
// pair of fsyncs): the steps whose layers one flush made durable.
func (d *DB) RecordSteps(steps []Step) error {
	return d.update(func(tx *bolt.Tx) error {
		for _, st := range steps {
			if st.Snapshot != nil {
				if err := put(tx, bucketSnapshots, st.Snapshot.ID, st.Snapshot); err != nil {
					return err
				}
			}
			for _, k := range st.Keys {
				if err := put(tx, bucketKeys, k.String(), st.Result); err != nil {
					return err
				}
			}
		}
		return nil
	})
}

// LayerSnapshot returns the snapshot holding an unpacked base-image layer,
// by the layer's chain ID (which names it with all layers below), and
// adds it to the lease of ctx's build.
func (d *DB) LayerSnapshot(ctx context.Context, chainID digest.Digest) (string, error) {
	lease, err := d.leaseFor(ctx)
	if err != nil {
		return "", err
	}
	var id string
	err = d.Hold(func() error {
		var err error
		if id, err = get[string](d, bucketLayers, chainID.String()); err != nil {
			return err
		}
		return lease.Add(coord.KindSnapshot, id)
	})
	return id, err
}

// PutLayerSnapshot records an unpacked base-image layer and its snapshot in
// one transaction.
func (d *DB) PutLayerSnapshot(chainID digest.Digest, s Snapshot) error {
	return d.update(func(tx *bolt.Tx) error {
		if err := put(tx, bucketSnapshots, s.ID, s); err != nil {
			return err
		}
		return put(tx, bucketLayers, chainID.String(), s.ID)
	})
}

// PutImage names an image in the local store, replacing any previous one.
// Naming the same image again, as a no-op rebuild does, writes nothing (no
// database sync): the name keeps the Created of its first naming.
func (d *DB) PutImage(img Image) error { return d.PutExport(nil, []Image{img}) }

// Image returns a named image of the local store.
func (d *DB) Image(name string) (Image, error) { return get[Image](d, bucketImages, name) }

// Images lists the local store by name.
func (d *DB) Images() ([]Image, error) {
	var all []Image
	err := each(d, bucketImages, func(_ string, img Image) { all = append(all, img) })
	sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	return all, err
}

// Keys lists every cache key record.
func (d *DB) Keys() (map[digest.Digest]Result, error) {
	all := map[digest.Digest]Result{}
	err := each(d, bucketKeys, func(k string, r Result) { all[digest.Digest(k)] = r })
	return all, err
}

// Layers lists the unpacked base-image layers: chain ID -> snapshot id.
func (d *DB) Layers() (map[digest.Digest]string, error) {
	all := map[digest.Digest]string{}
	err := each(d, bucketLayers, func(k string, id string) { all[digest.Digest(k)] = id })
	return all, err
}
