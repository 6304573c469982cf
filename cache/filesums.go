package cache

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"

	bolt "go.etcd.io/bbolt"
)

var (
	bucketFileSums  = []byte("filesums")
	bucketFileTrees = []byte("filetrees")
)

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
	return sums, ok
}

func keyMatches(v []byte, k FileKey) bool {
	return binary.LittleEndian.Uint64(v[0:]) == uint64(k.Size) &&
		binary.LittleEndian.Uint64(v[8:]) == uint64(k.MtimeNs) &&
		binary.LittleEndian.Uint64(v[16:]) == uint64(k.CtimeNs) &&
		binary.LittleEndian.Uint64(v[24:]) == k.Ino
}

// LookupTree returns the tree record last stored under id.
func (f FileSums) LookupTree(id []byte) (TreeSums, bool) {
	var rec TreeSums
	found := false
	f.db.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketFileTrees)
		if b == nil {
			return nil
		}
		v := b.Get(id)
		if len(v) < 32 || len(v)%32 != 0 {
			return nil
		}
		rec = TreeSums{ID: id, Seen: [32]byte(v), Sums: make([][32]byte, len(v)/32-1)}
		for i := range rec.Sums {
			rec.Sums[i] = [32]byte(v[32*(i+1):])
		}
		found = true
		return nil
	})
	return rec, found
}

// Store remembers file digests and, when tree is not nil, a tree record,
// in one write transaction; a failure only costs a later re-hash.
func (f FileSums) Store(paths []string, keys []FileKey, sums [][32]byte, tree *TreeSums) {
	if len(paths) == 0 && tree == nil {
		return
	}
	f.db.update(func(tx *bolt.Tx) error {
		b, err := tx.CreateBucketIfNotExists(bucketFileSums)
		if err != nil {
			return err
		}
		for i, p := range paths {
			if err := b.Put([]byte(p), encodeFileSum(keys[i], sums[i])); err != nil {
				return err
			}
		}
		if tree == nil {
			return nil
		}
		tb, err := tx.CreateBucketIfNotExists(bucketFileTrees)
		if err != nil {
			return err
		}
		v := make([]byte, 0, 32*(len(tree.Sums)+1))
		v = append(v, tree.Seen[:]...)
		for _, s := range tree.Sums {
			v = append(v, s[:]...)
		}
		return tb.Put(tree.ID, v)
	})
}

// DropGoneTrees removes the tree records of roots that no longer exist
// (a CI job's checkout directory, a removed snapshot), which nothing else
// removes: a record per root and filter would grow without bound. It
// returns how many it removed. The roots are checked outside the write
// transaction; a root made again meanwhile only costs a re-hash.
func (f FileSums) DropGoneTrees() (int, error) {
	var gone [][]byte
	err := f.db.view(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketFileTrees)
		if b == nil {
			return nil
		}
		checked := map[string]bool{} // root: exists
		return b.ForEach(func(k, _ []byte) error {
			root, _, _ := bytes.Cut(k, []byte{0})
			exists, ok := checked[string(root)]
			if !ok {
				_, err := os.Lstat(string(root))
				exists = !errors.Is(err, fs.ErrNotExist)
				checked[string(root)] = exists
			}
			if !exists {
				gone = append(gone, bytes.Clone(k))
			}
			return nil
		})
	})
	if err != nil || len(gone) == 0 {
		return 0, err
	}
	err = f.db.update(func(tx *bolt.Tx) error {
		b := tx.Bucket(bucketFileTrees)
		for _, k := range gone {
			if err := b.Delete(k); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("removing tree records: %w", err)
	}
	return len(gone), nil
}
