package cache

import (
	"bytes"
	"encoding/binary"
	"time"

	"github.com/builder-dev/builder/cache/internal/schema"
	bolt "go.etcd.io/bbolt"
)

var (
	bucketFileSums  = []byte("filesums")
	bucketFileTrees = []byte("filetrees")
	// bucketFileRoots holds, per root of tree records, when a build last
	// used one of them (8 bytes, Unix nanoseconds): what Prune drops
	// first when over its bound.
	bucketFileRoots = []byte("filesumroots")
	// metaFileSumsAdded counts the digests stored since the last Prune:
	// how the automatic GC knows cheaply when to prune them.
	metaFileSumsAdded = []byte("filesumsAdded")
)

// RootTouchResolution is how stale a root's last-use time may be before
// a tree lookup writes it again: a no-op rebuild writes nothing, one a
// day later one small transaction.
const RootTouchResolution = 24 * time.Hour

// FileSums remembers the content digests of build context files, so that a
// rebuild reads only the files whose size, times or inode changed; and of
// whole trees, so that a rebuild of an unchanged context reads one record
// instead of one per file.
type FileSums struct{ db *DB }

// TreeSums is a whole tree's record: the content digests of its regular
// files in the order of the walk that listed them, valid while a walk sees
// what that one saw (Seen, a digest of the paths, modes, link targets and
// FileKeys the walk found).
type TreeSums struct {
	ID   []byte // the tree's location and filters
	Seen [32]byte
	Sums [][32]byte
}

// FileKey is what must be unchanged for a remembered file digest to hold.
type FileKey struct {
	Size, MtimeNs, CtimeNs int64
	Ino                    uint64
}

// FileSums returns the database's file digest memory.
func (d *DB) FileSums() FileSums { return FileSums{db: d} }

// fileSumRecord is size, mtime, ctime, inode (8 bytes each), then the digest.
const fileSumRecord = 4*8 + 32

func encodeFileSum(k FileKey, sum [32]byte) []byte {
	b := make([]byte, fileSumRecord)
	binary.LittleEndian.PutUint64(b[0:], uint64(k.Size))
	binary.LittleEndian.PutUint64(b[8:], uint64(k.MtimeNs))
	binary.LittleEndian.PutUint64(b[16:], uint64(k.CtimeNs))
	binary.LittleEndian.PutUint64(b[24:], k.Ino)
	copy(b[32:], sum[:])
	return b
}

// Lookup returns the remembered digests of paths whose keys match. It is
// fastest with paths in ascending order: it then walks the records in one
// pass instead of searching for each.
func (f FileSums) Lookup(paths [][]byte, keys []FileKey) ([][32]byte, []bool) {
	sums := make([][32]byte, len(paths))
	ok := make([]bool, len(paths))
	f.db.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketFileSums)
		if b == nil {
			return nil
		}
		c := b.Cursor()
		var k, v []byte
		for i, p := range paths {
			// Step forward a little before seeking: consecutive paths
			// are usually consecutive records.
			for n := 0; k != nil && bytes.Compare(k, p) < 0 && n < 4; n++ {
				k, v = c.Next()
			}
			if k == nil || !bytes.Equal(k, p) {
				if k, v = c.Seek(p); k == nil || !bytes.Equal(k, p) {
					continue
				}
			}
			if len(v) == fileSumRecord && keyMatches(v, keys[i]) {
				copy(sums[i][:], v[32:])
				ok[i] = true
			}
		}
		return nil
	})
	// Digests stored by this DB and not yet written (hints.go).
	f.db.hints.Each(string(bucketFileSums), func(queued map[string][]byte) {
		for i, p := range paths {
			if v, found := queued[string(p)]; found && !ok[i] && keyMatches(v, keys[i]) {
				copy(sums[i][:], v[32:])
				ok[i] = true
			}
		}
	})
	return sums, ok
}

func keyMatches(v []byte, k FileKey) bool {
	return binary.LittleEndian.Uint64(v[0:]) == uint64(k.Size) &&
		binary.LittleEndian.Uint64(v[8:]) == uint64(k.MtimeNs) &&
		binary.LittleEndian.Uint64(v[16:]) == uint64(k.CtimeNs) &&
		binary.LittleEndian.Uint64(v[24:]) == k.Ino
}

// LookupTree returns the tree record last stored under id, and notes its
// root's use (a hint) when the last note is older than
// RootTouchResolution.
func (f FileSums) LookupTree(id []byte) (TreeSums, bool) {
	var rec TreeSums
	found, touch := false, false
	now := time.Now()
	root := treeRoot(id)
	f.db.view(func(tx *bolt.Tx) error {
		last, ok := f.db.hint(bucketFileRoots, string(root))
		if rb := tx.Bucket(bucketFileRoots); !ok && rb != nil {
			last = rb.Get(root)
		}
		touch = rootStale(last, now)
		v, ok := f.db.hint(bucketFileTrees, string(id))
		if b := tx.Bucket(bucketFileTrees); !ok && b != nil {
			v = b.Get(id)
		}
		rec, found = decodeTree(id, v)
		return nil
	})
	if found && touch {
		// Written at once (at most once a RootTouchResolution), not
		// queued: a prune in another process drops roots by this time,
		// and this one is in use now. Queued only if that fails.
		if f.db.update(func(tx *bolt.Tx) error { return touchRoot(tx, id, now) }) != nil {
			f.db.putHint(bucketFileRoots, string(root), rootTime(now))
		}
	}
	return rec, found
}

// touchRoot notes that the root of tree record id was used at now.
func touchRoot(tx *bolt.Tx, id []byte, now time.Time) error {
	rb, err := tx.CreateBucketIfNotExists(bucketFileRoots)
	if err != nil {
		return err
	}
	return rb.Put(treeRoot(id), rootTime(now))
}

// decodeTree decodes tree record v (copying it out of the transaction).
func decodeTree(id, v []byte) (TreeSums, bool) {
	if len(v) < 32 || len(v)%32 != 0 {
		return TreeSums{}, false
	}
	rec := TreeSums{ID: id, Seen: [32]byte(v), Sums: make([][32]byte, len(v)/32-1)}
	for i := range rec.Sums {
		rec.Sums[i] = [32]byte(v[32*(i+1):])
	}
	return rec, true
}

// treeRoot is the root directory a tree record's id names.
func treeRoot(id []byte) []byte {
	root, _, _ := bytes.Cut(id, []byte{0})
	return root
}

// rootStale says whether a root's last-use time v needs writing again at now.
func rootStale(v []byte, now time.Time) bool {
	if len(v) != 8 {
		return true
	}
	last := time.Unix(0, int64(binary.LittleEndian.Uint64(v)))
	return now.Sub(last) >= RootTouchResolution || last.After(now)
}

// rootTime encodes a root's last-use time.
func rootTime(now time.Time) []byte {
	return binary.LittleEndian.AppendUint64(nil, uint64(now.UnixNano()))
}

// GCCounts returns, in one read transaction, what the automatic GC looks
// at after each build: the running usage total (Usage) and how many file
// digests were stored since the last Prune (an upper bound of their
// growth: a digest stored again over its old record counts too).
func (d *DB) GCCounts() (total int64, added int, err error) {
	err = d.view(func(tx *bolt.Tx) error {
		total = schema.Usage(tx)
		if v := tx.Bucket(bucketMeta).Get(metaFileSumsAdded); len(v) == 8 {
			added = int(binary.LittleEndian.Uint64(v))
		}
		return nil
	})
	return total, added, err
}

// Store remembers file digests and, when tree is not nil, a tree record
// (noting its root's use). They are hints (see hints.go): queued, seen by
// this DB's lookups at once, written with the next write transaction; a
// loss only costs a later re-hash.
func (f FileSums) Store(paths []string, keys []FileKey, sums [][32]byte, tree *TreeSums) {
	added := len(paths)
	if tree != nil {
		added += len(tree.Sums)
	}
	f.db.hints.Count(added)
	for i, p := range paths {
		f.put(bucketFileSums, p, encodeFileSum(keys[i], sums[i]))
	}
	if tree != nil {
		f.put(bucketFileRoots, string(treeRoot(tree.ID)), rootTime(time.Now()))
		v := make([]byte, 0, 32*(len(tree.Sums)+1))
		v = append(v, tree.Seen[:]...)
		for _, s := range tree.Sums {
			v = append(v, s[:]...)
		}
		f.put(bucketFileTrees, string(tree.ID), v)
	}
	if f.db.hints.Full() {
		f.db.FlushHints() // a failure only costs a later re-hash
	}
}

// put queues a hint, writing the full queue first: a context of more
// files than the queue's bound writes its digests in transactions of
// their own rather than dropping them.
func (f FileSums) put(bucket []byte, key string, v []byte) {
	if !f.db.putHint(bucket, key, v) && f.db.FlushHints() == nil {
		f.db.putHint(bucket, key, v)
	}
}

// Count returns how many per-file and tree records are stored, the
// queued ones written first.
func (f FileSums) Count() (files, trees int, err error) {
	if err := f.db.FlushHints(); err != nil {
		return 0, 0, err
	}
	err = f.db.view(func(tx *bolt.Tx) error {
		if b := tx.Bucket(bucketFileSums); b != nil {
			files = b.Stats().KeyN
		}
		if b := tx.Bucket(bucketFileTrees); b != nil {
			trees = b.Stats().KeyN
		}
		return nil
	})
	return files, trees, err
}
