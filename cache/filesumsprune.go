package cache

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"path/filepath"
	"time"

	"github.com/builder-dev/builder/cache/sumprune"
	bolt "go.etcd.io/bbolt"
)

// Nothing but Prune removes the file digest memory: a machine that builds
// a new checkout directory per job would grow the database without bound.
// Per-file records are owned by the nearest root of a tree record above
// them (the build context they were read for); records under no root are
// orphans, owned by nobody.

// DefaultMaxFileDigests bounds the digests Prune keeps, per-file records
// and the entries of tree records: about 150 MB of database at most, the
// checksums of 1M context files.
const DefaultMaxFileDigests = 1 << 20

// FileRootMaxAge is how long the records of a root no build used are kept.
const FileRootMaxAge = 30 * 24 * time.Hour

// FileSumsPolicy says what Prune keeps of the file digest memory.
type FileSumsPolicy struct {
	// MaxDigests is the most digests kept (0: DefaultMaxFileDigests):
	// over it, orphans go, then the roots least recently used.
	MaxDigests int
	// MaxAge drops the roots unused for longer (0: FileRootMaxAge).
	MaxAge time.Duration
	// Now is the time ages count from (zero: time.Now()).
	Now time.Time
	// DirsOnly looks at directories only, not at each file: a record of a
	// file removed or changed in a directory still there stays (until the
	// bound drops it, or the file's next digest replaces it). It makes
	// the prune several times cheaper, for the automatic GC.
	DirsOnly bool
}

// FileSumsPruned says what Prune removed and kept.
type FileSumsPruned struct {
	// Files and Trees are the per-file and tree records removed.
	Files, Trees int
	// Kept is the digests kept.
	Kept int
}

// sumRoot is a root of tree records and what names it.
type sumRoot struct {
	sumprune.Root
	times map[string][]byte // root record as read, by its raw name
	ids   [][]byte          // its tree records
}

// Prune removes the records that can no longer match (their directory is
// gone; unless p.DirsOnly, their file is gone or changed: its size, times
// or inode differ), the records of roots that
// are gone or unused for p.MaxAge, and then, while more than p.MaxDigests
// digests are left, the orphans and the roots least recently used (not the
// root used last, nor those used within the last hour). The
// files are looked at outside any transaction, a chunk of records at a
// time; a record a build wrote again meanwhile is kept.
func (f FileSums) Prune(p FileSumsPolicy) (FileSumsPruned, error) {
	if p.MaxDigests <= 0 {
		p.MaxDigests = DefaultMaxFileDigests
	}
	if p.MaxAge <= 0 {
		p.MaxAge = FileRootMaxAge
	}
	if p.Now.IsZero() {
		p.Now = time.Now()
	}
	var out FileSumsPruned
	roots, err := f.readRoots()
	if err != nil {
		return out, err
	}
	plan := map[string]*sumprune.Root{}
	files := sumprune.NewFiles()
	for name, r := range roots {
		r.Drop = files.DirGone(name) || (!r.Used.IsZero() && r.Used.Before(p.Now.Add(-p.MaxAge)))
		plan[name] = &r.Root
	}
	orphans := &sumprune.Root{}
	owner := sumprune.Owners(plan, orphans)
	n, err := f.scanFiles(func(path string, v []byte) bool {
		dir := filepath.Dir(path)
		r := owner(dir)
		if r.Drop || len(v) != fileSumRecord || files.DirGone(dir) {
			return false
		}
		if !p.DirsOnly && !files.Current(path, func(k sumprune.Key) bool { return keyMatches(v, FileKey(k)) }) {
			return false
		}
		r.Files++
		return true
	})
	out.Files += n
	if err != nil {
		return out, err
	}
	kept, again := sumprune.Bound(plan, orphans, p.MaxDigests, p.Now)
	if again {
		n, err := f.scanFiles(func(path string, _ []byte) bool { return !owner(filepath.Dir(path)).Drop })
		out.Files += n
		if err != nil {
			return out, err
		}
	}
	out.Trees, err = f.dropRoots(roots, p.Now)
	out.Kept = kept
	return out, err
}

// readRoots reads the roots of the tree records and their last-use times,
// by cleaned path.
func (f FileSums) readRoots() (map[string]*sumRoot, error) {
	// Queued hints first: a prune looks at every record.
	if err := f.db.FlushHints(); err != nil {
		return nil, err
	}
	roots := map[string]*sumRoot{}
	get := func(raw []byte) *sumRoot {
		name := filepath.Clean(string(raw))
		r := roots[name]
		if r == nil {
			r = &sumRoot{times: map[string][]byte{}}
			roots[name] = r
		}
		return r
	}
	err := f.db.view(func(tx *bolt.Tx) error {
		if tb := tx.Bucket(bucketFileTrees); tb != nil {
			tb.ForEach(func(k, v []byte) error {
				r := get(treeRoot(k))
				r.ids = append(r.ids, bytes.Clone(k))
				r.Trees += max(len(v)/32-1, 0)
				if _, ok := r.times[string(treeRoot(k))]; !ok {
					r.times[string(treeRoot(k))] = nil
				}
				return nil
			})
		}
		if rb := tx.Bucket(bucketFileRoots); rb != nil {
			rb.ForEach(func(k, v []byte) error {
				r := get(k)
				r.times[string(k)] = bytes.Clone(v)
				if len(v) == 8 {
					if t := time.Unix(0, int64(binary.LittleEndian.Uint64(v))); t.After(r.Used) {
						r.Used = t
					}
				}
				return nil
			})
		}
		return nil
	})
	return roots, err
}

// dropRoots removes the tree records and times of the roots to drop,
// but of those a build used since readRoots; it gives the roots never
// used since their records were made (before roots had times) the time
// now, and starts the count of digests added again. It returns how many
// tree records it removed.
func (f FileSums) dropRoots(roots map[string]*sumRoot, now time.Time) (int, error) {
	removed := 0
	err := f.db.update(func(tx *bolt.Tx) error {
		removed = 0
		rb, err := tx.CreateBucketIfNotExists(bucketFileRoots)
		if err != nil {
			return err
		}
		tb := tx.Bucket(bucketFileTrees)
		for _, r := range roots {
			if !r.Drop {
				if r.Used.IsZero() {
					for name := range r.times {
						if err := rb.Put([]byte(name), binary.LittleEndian.AppendUint64(nil, uint64(now.UnixNano()))); err != nil {
							return err
						}
					}
				}
				continue
			}
			if usedSince(rb, r) {
				continue
			}
			for _, id := range r.ids {
				if tb != nil && tb.Get(id) != nil {
					if err := tb.Delete(id); err != nil {
						return err
					}
					removed++
				}
			}
			for name := range r.times {
				if err := rb.Delete([]byte(name)); err != nil {
					return err
				}
			}
		}
		return tx.Bucket(bucketMeta).Put(metaFileSumsAdded, make([]byte, 8))
	})
	if err != nil {
		return 0, fmt.Errorf("pruning file digest records: %w", err)
	}
	return removed, nil
}

// usedSince says whether a build noted a use of r after readRoots.
func usedSince(rb *bolt.Bucket, r *sumRoot) bool {
	for name, v := range r.times {
		if !bytes.Equal(rb.Get([]byte(name)), v) {
			return true
		}
	}
	return false
}

// pruneChunk is how many per-file records scanFiles reads per
// transaction: the database is held only while they are copied.
const pruneChunk = 4096

// scanFiles calls keep on every per-file record, outside any
// transaction, and removes those it rejects unless a build stored them
// again meanwhile. It returns how many it removed.
func (f FileSums) scanFiles(keep func(path string, v []byte) bool) (int, error) {
	if err := f.db.FlushHints(); err != nil {
		return 0, err
	}
	removed := 0
	var after []byte
	for {
		var ks, vs [][]byte
		err := f.db.view(func(tx *bolt.Tx) error {
			b := tx.Bucket(bucketFileSums)
			if b == nil {
				return nil
			}
			c := b.Cursor()
			k, v := c.First()
			if after != nil {
				if k, v = c.Seek(after); bytes.Equal(k, after) {
					k, v = c.Next()
				}
			}
			for ; k != nil && len(ks) < pruneChunk; k, v = c.Next() {
				ks, vs = append(ks, bytes.Clone(k)), append(vs, bytes.Clone(v))
			}
			return nil
		})
		if err != nil || len(ks) == 0 {
			return removed, err
		}
		after = ks[len(ks)-1]
		var drop []int
		for i := range ks {
			if !keep(string(ks[i]), vs[i]) {
				drop = append(drop, i)
			}
		}
		if len(drop) == 0 {
			continue
		}
		n := 0
		err = f.db.update(func(tx *bolt.Tx) error {
			n = 0
			b := tx.Bucket(bucketFileSums)
			for _, i := range drop {
				if bytes.Equal(b.Get(ks[i]), vs[i]) {
					if err := b.Delete(ks[i]); err != nil {
						return err
					}
					n++
				}
			}
			return nil
		})
		if err != nil {
			return removed, fmt.Errorf("pruning file digest records: %w", err)
		}
		removed += n
	}
}
