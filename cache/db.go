package cache

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"sort"
	"strconv"
	"time"

	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	bolt "go.etcd.io/bbolt"
)

var (
	bucketSnapshots = []byte("snapshots")
	bucketKeys      = []byte("keys")
	bucketLayers    = []byte("layers")
	bucketImages    = []byte("images")
)

// ErrNotFound is wrapped by lookups that find nothing.
var ErrNotFound = fs.ErrNotExist

// Snapshot is the record of one committed layer directory.
type Snapshot struct {
	ID     string `json:"id"`
	Parent string `json:"parent,omitempty"`
	// Empty is true when the layer changes nothing; it is kept in the chain
	// (so history lines up) but exported as an empty_layer.
	Empty bool `json:"empty,omitempty"`
	// DiffID is the digest of the uncompressed layer tar, once known.
	DiffID digest.Digest `json:"diffID,omitempty"`
	// Blobs holds the compressed forms already in the content store, by media type.
	Blobs       map[string]ocispec.Descriptor `json:"blobs,omitempty"`
	Description string                        `json:"description,omitempty"`
	Created     time.Time                     `json:"created"`
}

// Image is a named image in the local store.
type Image struct {
	Name     string             `json:"name"`
	Manifest ocispec.Descriptor `json:"manifest"`
	// Snapshot is the top of the image's layer chain on disk.
	Snapshot string    `json:"snapshot"`
	Created  time.Time `json:"created"`
}

// DB is the metadata database of one state directory.
type DB struct {
	bolt *bolt.DB
	path string
}

// Open opens (creating if needed) the database at path. bbolt holds an
// exclusive file lock while it is open, which also serialises builds on one
// state dir; onWait is called once if another process holds it.
func Open(path string, onWait func()) (*DB, error) {
	b, err := bolt.Open(path, 0o600, &bolt.Options{Timeout: 200 * time.Millisecond})
	if errors.Is(err, bolt.ErrTimeout) {
		if onWait != nil {
			onWait()
		}
		b, err = bolt.Open(path, 0o600, nil)
	}
	if err != nil {
		return nil, fmt.Errorf("opening metadata database %s: %w", path, err)
	}
	err = b.Update(func(tx *bolt.Tx) error {
		for _, name := range [][]byte{bucketSnapshots, bucketKeys, bucketLayers, bucketImages} {
			if _, err := tx.CreateBucketIfNotExists(name); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		b.Close()
		return nil, fmt.Errorf("initialising metadata database %s: %w", path, err)
	}
	return &DB{bolt: b, path: path}, nil
}

// Close releases the database and its lock.
func (d *DB) Close() error { return d.bolt.Close() }

func get[T any](d *DB, bucket []byte, key string) (T, error) {
	var v T
	err := d.bolt.View(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucket).Get([]byte(key))
		if b == nil {
			return fmt.Errorf("%s %s: %w", bucket, key, ErrNotFound)
		}
		return json.Unmarshal(b, &v)
	})
	return v, err
}

func put(tx *bolt.Tx, bucket []byte, key string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	return tx.Bucket(bucket).Put([]byte(key), b)
}

// NewSnapshotID reserves a short unique snapshot id. Short ids keep overlay's
// lowerdir option, limited to one page, able to hold many layers.
func (d *DB) NewSnapshotID() (string, error) {
	var id string
	err := d.bolt.Update(func(tx *bolt.Tx) error {
		n, err := tx.Bucket(bucketSnapshots).NextSequence()
		id = strconv.FormatUint(n, 36)
		return err
	})
	return id, err
}

// PutSnapshot records a committed snapshot.
func (d *DB) PutSnapshot(s Snapshot) error {
	return d.bolt.Update(func(tx *bolt.Tx) error { return put(tx, bucketSnapshots, s.ID, s) })
}

// Snapshot returns the record of id.
func (d *DB) Snapshot(id string) (Snapshot, error) { return get[Snapshot](d, bucketSnapshots, id) }

// Chain returns id's snapshot and its ancestors, the top-most first.
func (d *DB) Chain(id string) ([]Snapshot, error) {
	var chain []Snapshot
	err := d.bolt.View(func(tx *bolt.Tx) error {
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
	err := d.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketSnapshots).ForEach(func(k, v []byte) error {
			var s Snapshot
			if err := json.Unmarshal(v, &s); err != nil {
				return fmt.Errorf("snapshot %s: %w", k, err)
			}
			all = append(all, s)
			return nil
		})
	})
	return all, err
}

// Result is what a cache key resolved to.
type Result struct {
	Snapshot string    `json:"snapshot"`
	Created  time.Time `json:"created"`
}

// Lookup returns the result recorded for a cache key.
func (d *DB) Lookup(key digest.Digest) (Result, error) {
	return get[Result](d, bucketKeys, key.String())
}

// Record stores the result of a cache key.
func (d *DB) Record(key digest.Digest, r Result) error {
	return d.bolt.Update(func(tx *bolt.Tx) error { return put(tx, bucketKeys, key.String(), r) })
}

// LayerSnapshot returns the snapshot holding an unpacked base-image layer,
// by the layer's chain ID (which names it with all layers below).
func (d *DB) LayerSnapshot(chainID digest.Digest) (string, error) {
	return get[string](d, bucketLayers, chainID.String())
}

// PutLayerSnapshot records an unpacked base-image layer and its snapshot in
// one transaction.
func (d *DB) PutLayerSnapshot(chainID digest.Digest, s Snapshot) error {
	return d.bolt.Update(func(tx *bolt.Tx) error {
		if err := put(tx, bucketSnapshots, s.ID, s); err != nil {
			return err
		}
		return put(tx, bucketLayers, chainID.String(), s.ID)
	})
}

// PutImage names an image in the local store, replacing any previous one.
func (d *DB) PutImage(img Image) error {
	return d.bolt.Update(func(tx *bolt.Tx) error { return put(tx, bucketImages, img.Name, img) })
}

// Image returns a named image of the local store.
func (d *DB) Image(name string) (Image, error) { return get[Image](d, bucketImages, name) }

// Images lists the local store by name.
func (d *DB) Images() ([]Image, error) {
	var all []Image
	err := d.bolt.View(func(tx *bolt.Tx) error {
		return tx.Bucket(bucketImages).ForEach(func(k, v []byte) error {
			var img Image
			if err := json.Unmarshal(v, &img); err != nil {
				return fmt.Errorf("image %s: %w", k, err)
			}
			all = append(all, img)
			return nil
		})
	})
	sort.Slice(all, func(i, j int) bool { return all[i].Name < all[j].Name })
	return all, err
}
