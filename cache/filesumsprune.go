package cache

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"time"

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
}

// FileSumsPruned says what Prune removed and kept.
type FileSumsPruned struct {
	// Files and Trees are the per-file and tree records removed.
	Files, Trees int
	// Kept is the digests kept.
	Kept int
}

// sumRoot is a root of tree records, or the orphans.
type sumRoot struct {
	used  time.Time
	times map[string][]byte // root record as read, by its raw name
	ids   [][]byte          // its tree records
	trees int               // digests in its tree records
	files int               // per-file records kept under it
	drop  bool
}

// Prune removes the records that can no longer match (their file is gone
// or changed: its size, times or inode differ), the records of roots that
// are gone or unused for p.MaxAge, and then, while more than p.MaxDigests
// digests are left, the orphans and the roots least recently used. The
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
	st := statCache{gone: map[string]bool{}}
	for name, r := range roots {
		r.drop = st.dirGone(name) || (!r.used.IsZero() && r.used.Before(p.Now.Add(-p.MaxAge)))
	}
	orphans := &sumRoot{}
	owner := ownerOf(roots, orphans)
	n, err := f.scanFiles(func(path string, v []byte) bool {
		r := owner(filepath.Dir(path))
		if r.drop || !st.current(path, v) {
			return false
		}
		r.files++
		return true
	})
	out.Files += n
	if err != nil {
		return out, err
	}
	kept, again := bound(roots, orphans, p.MaxDigests)
	if again {
		n, err := f.scanFiles(func(path string, _ []byte) bool { return !owner(filepath.Dir(path)).drop })
		out.Files += n
		if err != nil {
			return out, err
		}
	}
	out.Trees, err = f.dropRoots(roots, p.Now)
	out.Kept = kept
	return out, err
}

// bound drops orphans, then roots least recently used first, until at
// most max digests are left; it returns how many are, and whether a
// dropped root (or the orphans) has per-file records to remove.
func bound(roots map[string]*sumRoot, orphans *sumRoot, max int) (int, bool) {
	all := []*sumRoot{orphans}
	total := orphans.files
	for _, r := range roots {
		if !r.drop {
			all = append(all, r)
			total += r.files + r.trees
		}
	}
	sort.SliceStable(all[1:], func(i, j int) bool { return all[1+i].used.Before(all[1+j].used) })
	again := false
	for _, r := range all {
		if total <= max {
			break
		}
		r.drop = true
		total -= r.files + r.trees
		again = again || r.files > 0
	}
	return total, again
}

// readRoots reads the roots of the tree records and their last-use times,
// by cleaned path.
func (f FileSums) readRoots() (map[string]*sumRoot, error) {
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
				r.trees += max(len(v)/32-1, 0)
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
					if t := time.Unix(0, int64(binary.LittleEndian.Uint64(v))); t.After(r.used) {
						r.used = t
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
			if !r.drop {
				if r.used.IsZero() {
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

// ownerOf returns a function giving the root that owns the per-file
// records of a directory: the nearest root at or above it, else orphans.
func ownerOf(roots map[string]*sumRoot, orphans *sumRoot) func(dir string) *sumRoot {
	memo := map[string]*sumRoot{}
	var find func(string) *sumRoot
	find = func(dir string) *sumRoot {
		if r, ok := memo[dir]; ok {
			return r
		}
		r := roots[dir]
		if r == nil {
			if parent := filepath.Dir(dir); parent != dir {
				r = find(parent)
			} else {
				r = orphans
			}
		}
		memo[dir] = r
		return r
	}
	return find
}

// pruneChunk is how many per-file records scanFiles reads per
// transaction: the database is held only while they are copied.
const pruneChunk = 4096

// scanFiles calls keep on every per-file record, outside any
// transaction, and removes those it rejects unless a build stored them
// again meanwhile. It returns how many it removed.
func (f FileSums) scanFiles(keep func(path string, v []byte) bool) (int, error) {
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

// statCache looks at the files of records, each directory once.
type statCache struct{ gone map[string]bool }

// dirGone says whether dir, or a directory above it, is gone.
func (c statCache) dirGone(dir string) bool {
	if g, ok := c.gone[dir]; ok {
		return g
	}
	parent := filepath.Dir(dir)
	g := parent != dir && c.dirGone(parent)
	if !g {
		_, err := os.Lstat(dir)
		g = isGone(err)
	}
	c.gone[dir] = g
	return g
}

// current says whether the record v of path can still match the file
// there. A file that cannot be looked at for another reason keeps its
// record.
func (c statCache) current(path string, v []byte) bool {
	if len(v) != fileSumRecord || c.dirGone(filepath.Dir(path)) {
		return false
	}
	k, err := statKey(path)
	if err != nil {
		return !isGone(err)
	}
	return keyMatches(v, k)
}

func isGone(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}
