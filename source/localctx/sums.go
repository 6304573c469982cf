package localctx

import (
	"crypto/sha256"
	"encoding/binary"
	"io/fs"
	"runtime"
	"time"

	"github.com/builder-dev/builder/cache"
	"github.com/moby/patternmatcher"
	"golang.org/x/sync/errgroup"
)

// FileKey is what must be unchanged for a remembered file digest to hold.
type FileKey = cache.FileKey

// TreeSums is the record of a whole tree's file digests (see walkDigest
// for Seen).
type TreeSums = cache.TreeSums

// SumCache remembers file digests across builds, keyed by path and
// FileKey, and the digests of whole trees, keyed by the tree's location
// and filters. Implementations must be safe for concurrent use.
type SumCache interface {
	// Lookup returns the remembered digests of paths whose keys match.
	Lookup(paths [][]byte, keys []FileKey) (sums [][32]byte, ok []bool)
	// LookupTree returns the record last stored under id.
	LookupTree(id []byte) (TreeSums, bool)
	// Store remembers file digests and, when tree is not nil, a whole
	// tree's record, in one write; failures only cost a later re-hash.
	Store(paths []string, keys []FileKey, sums [][32]byte, tree *TreeSums)
}

// Settling: a digest is remembered only for a file whose times are older
// than the walk that read it by more than the file system's timestamp
// granularity. A write in the same tick as the file's last change could
// leave size and times as they were and go unseen; a write in any later
// tick changes them. Local Linux file systems stamp files from the clock
// time.Now reads, ticking at least every 10 ms (exFAT keeps 10 ms), so
// fineSettle leaves a wide margin. A network or FUSE file system may stamp
// them from another machine's clock, and a file system that keeps whole
// seconds (FAT keeps 2 s, HFS+ 1 s) shows it by a ctime without
// nanoseconds: both get coarseSettle (see rootSettle).
const (
	fineSettle   = 100 * time.Millisecond
	coarseSettle = 2 * time.Second
)

// settled reports whether a digest of the file with key k, read by a walk
// that started at walked, may be remembered; margin is the root's.
func settled(k FileKey, walked time.Time, margin time.Duration) bool {
	if k.CtimeNs%int64(time.Second) == 0 {
		margin = max(margin, coarseSettle)
	}
	limit := walked.Add(-margin).UnixNano()
	return k.CtimeNs < limit && k.MtimeNs < limit
}

// settleMargin is the root's settling margin, from one statfs.
func (t *Tree) settleMargin() time.Duration {
	t.settleOnce.Do(func() { t.settle = rootSettle(t.Root) })
	return t.settle
}

// hashFiles fills in the content digest of every regular file: all at once
// from the tree's record when nothing the walk saw changed, else each from
// the sum cache where it is still valid, else by reading it. walked is when
// the walk that listed entries started; treeID names the tree's record,
// rec (if not nil) is that record as read already.
func (t *Tree) hashFiles(entries []*entry, walked time.Time, treeID []byte, rec *TreeSums) error {
	// Sized once: a large context's appends would copy them many times.
	files := make([]*entry, 0, len(entries))
	for _, e := range entries {
		if e.mode.IsRegular() {
			files = append(files, e)
		}
	}
	if len(files) == 0 {
		return nil
	}
	var seen [32]byte
	if t.Sums != nil {
		seen = walkDigest(entries)
		if t.treeSums(files, treeID, seen, rec) {
			return nil
		}
	}
	// The keys only when the tree's record did not do: 32 bytes a file
	// that an unchanged context's check need not write.
	keys := make([]FileKey, len(files))
	for i, e := range files {
		keys[i] = e.key
	}
	known := t.lookupSums(files, keys)
	var todo []int
	for i := range files {
		if !known[i] {
			todo = append(todo, i)
		}
	}
	if err := t.hashEntries(files, todo); err != nil {
		return err
	}
	t.storeSums(files, keys, todo, walked, &TreeSums{ID: treeID, Seen: seen})
	return nil
}

// treeID names the record of what rel selects with these filters: the
// tree's location on the host and the patterns that filter it.
func (t *Tree) treeID(rel string, extra *patternmatcher.PatternMatcher) []byte {
	h := sha256.New()
	for _, pm := range []*patternmatcher.PatternMatcher{t.excludes, extra} {
		if pm != nil {
			for _, p := range pm.Patterns() {
				// String drops the "!" of an exclusion.
				neg := byte(0)
				if p.Exclusion() {
					neg = 1
				}
				h.Write([]byte{neg})
				h.Write([]byte(p.String()))
				h.Write([]byte{0})
			}
		}
		// Which filter the patterns belong to.
		h.Write([]byte{1})
	}
	id := []byte(t.Root)
	id = append(id, 0)
	id = append(id, rel...)
	id = append(id, 0)
	return h.Sum(id)
}

// hashBuf is the size of the buffers that gather what is hashed. A
// variable, so that they are on the heap, as direntBuf.
var hashBuf = 64 << 10

// walkDigest digests what a walk saw that a file's digest depends on:
// every entry's path, mode and link target, and each regular file's key.
// Directories' times are left out: a file made and removed beside the
// others changes them but no file's content.
func walkDigest(entries []*entry) [32]byte {
	h := sha256.New()
	buf := make([]byte, 0, hashBuf)
	for _, e := range entries {
		buf = e.appendHost(buf)
		buf = append(buf, 0)
		buf = binary.LittleEndian.AppendUint32(buf, uint32(e.mode))
		switch {
		case e.mode.IsRegular():
			buf = binary.LittleEndian.AppendUint64(buf, uint64(e.key.Size))
			buf = binary.LittleEndian.AppendUint64(buf, uint64(e.key.MtimeNs))
			buf = binary.LittleEndian.AppendUint64(buf, uint64(e.key.CtimeNs))
			buf = binary.LittleEndian.AppendUint64(buf, e.key.Ino)
		case e.mode&fs.ModeSymlink != 0:
			buf = append(buf, e.link...)
			buf = append(buf, 0)
		}
		if len(buf) > hashBuf-4<<10 {
			h.Write(buf)
			buf = buf[:0]
		}
	}
	h.Write(buf)
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// treeSums fills in every file's digest from the tree's record (known,
// else looked up) if the record was made from a walk that saw what this
// one saw.
func (t *Tree) treeSums(files []*entry, id []byte, seen [32]byte, known *TreeSums) bool {
	rec := known
	if rec == nil {
		r, ok := t.Sums.LookupTree(id)
		if !ok {
			return false
		}
		rec = &r
	}
	if rec.Seen != seen || len(rec.Sums) != len(files) {
		return false
	}
	for i, e := range files {
		e.sum = rec.Sums[i]
	}
	return true
}

// lookupSums fills in the sums the sum cache still has, and says which.
func (t *Tree) lookupSums(files []*entry, keys []FileKey) (known []bool) {
	known = make([]bool, len(files))
	if t.Sums == nil {
		return known
	}
	// All host paths in one buffer, the lookup's keys slices of it.
	size := 0
	for _, e := range files {
		size += len(e.dir.path) + 1 + len(e.name)
	}
	buf := make([]byte, 0, size)
	paths := make([][]byte, len(files))
	for i, e := range files {
		start := len(buf)
		buf = e.appendHost(buf)
		paths[i] = buf[start:len(buf):len(buf)]
	}
	sums, ok := t.Sums.Lookup(paths, keys)
	for i := range files {
		if ok[i] {
			files[i].sum, known[i] = sums[i], true
		}
	}
	return known
}

// hashEntries reads and hashes files[i] for each i in todo, in parallel
// unless the tree is Serial.
func (t *Tree) hashEntries(files []*entry, todo []int) error {
	if t.Serial {
		for _, i := range todo {
			sum, err := hashFile(files[i].hostPath())
			if err != nil {
				return err
			}
			files[i].sum = sum
		}
		return nil
	}
	var g errgroup.Group
	g.SetLimit(runtime.NumCPU())
	for _, i := range todo {
		g.Go(func() error {
			sum, err := hashFile(files[i].hostPath())
			files[i].sum = sum
			return err
		})
	}
	return g.Wait()
}

// storeSums remembers the sums just read (files[i] for i in todo) and, if
// the tree's record did not match, the whole tree's: only what had settled
// when the walk started (see settled).
func (t *Tree) storeSums(files []*entry, keys []FileKey, todo []int, walked time.Time, tree *TreeSums) {
	if t.Sums == nil {
		return
	}
	paths := make([]string, 0, len(todo))
	ks := make([]FileKey, 0, len(todo))
	sums := make([][32]byte, 0, len(todo))
	margin := t.settleMargin()
	for _, i := range todo {
		if settled(keys[i], walked, margin) {
			paths, ks, sums = append(paths, files[i].hostPath()), append(ks, keys[i]), append(sums, files[i].sum)
		}
	}
	for _, k := range keys {
		if !settled(k, walked, margin) {
			tree = nil
			break
		}
	}
	if tree != nil {
		tree.Sums = make([][32]byte, len(files))
		for i, e := range files {
			tree.Sums[i] = e.sum
		}
	}
	if len(paths) > 0 || tree != nil {
		t.Sums.Store(paths, ks, sums, tree)
	}
}
