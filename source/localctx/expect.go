package localctx

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
)

// A COPY from the context is keyed by a checksum of its files, taken before
// the copy reads them (beside the base image's resolution, or before RUN
// steps): a file edited in between would be copied in its new state and
// recorded under the key of the old one, which a later build of the old
// state would hit. A tree with Verify set keeps what each checksum covered,
// and the copy checks every file it reads against it (Expect), failing
// rather than recording files the key does not describe.

// ErrChanged is wrapped when a copied file is not what its checksum read.
var ErrChanged = errors.New("changed while the build ran; run the build again")

// expects is what a Verify tree's checksums and matches covered.
type expects struct {
	mu      sync.Mutex
	entries map[string][]*entry // by checksummed rel
	matches map[string][]string // by source pattern
}

// remember keeps the entries a checksum of rel covered.
func (t *Tree) remember(rel string, entries []*entry) {
	if !t.Verify {
		return
	}
	if !slices.IsSortedFunc(entries, compareEntries) {
		// The portable walk's blocks are not per directory.
		entries = slices.Clone(entries)
		slices.SortStableFunc(entries, compareEntries)
	}
	t.seen.mu.Lock()
	defer t.seen.mu.Unlock()
	if t.seen.entries == nil {
		t.seen.entries = map[string][]*entry{}
	}
	t.seen.entries[rel] = entries
}

// sameMatch reports an error if src matched other paths before (a Verify
// tree's copy must select what its checksum did).
func (t *Tree) sameMatch(src string, out []string) error {
	if !t.Verify {
		return nil
	}
	t.seen.mu.Lock()
	defer t.seen.mu.Unlock()
	if t.seen.matches == nil {
		t.seen.matches = map[string][]string{}
	}
	before, ok := t.seen.matches[src]
	if !ok {
		t.seen.matches[src] = out
		return nil
	}
	if !slices.Equal(before, out) {
		return fmt.Errorf("%s: the files it matches %w", src, ErrChanged)
	}
	return nil
}

// Expect is what a checksum of one source covered, for a copy of it to
// check what it reads. Safe for concurrent use.
type Expect struct {
	rel     string
	entries []*entry // compareEntries order, the source itself first
	seen    []atomic.Bool
}

// Expect returns what the checksum of rel covered, for one copy of it; nil
// if the tree does not Verify. A Verify tree that did not checksum rel
// fails it.
func (t *Tree) Expect(rel string) (*Expect, error) {
	if !t.Verify {
		return nil, nil
	}
	t.seen.mu.Lock()
	entries, ok := t.seen.entries[rel]
	t.seen.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("%s: %w", rel, ErrChanged)
	}
	return &Expect{rel: rel, entries: entries, seen: make([]atomic.Bool, len(entries))}, nil
}

// Check checks an entry the copy read: sub is its path below the source
// ("" for the source itself), with its mode and, for a regular file, its
// key (from a stat after the read), for a symlink its target.
func (x *Expect) Check(sub string, mode fs.FileMode, key FileKey, link string) error {
	if len(x.entries) == 0 {
		// The checksum left the source out (--exclude).
		return x.changed(sub)
	}
	i := 0
	if !x.entries[0].mode.IsDir() {
		sub = "" // a file source: the copy's name for it is its own
	} else {
		dir, name := "", sub
		if j := strings.LastIndexByte(sub, '/'); j >= 0 {
			dir, name = sub[:j], sub[j+1:]
		}
		var ok bool
		i, ok = slices.BinarySearchFunc(x.entries, [2]string{dir, name}, func(e *entry, k [2]string) int {
			if c := strings.Compare(e.dir.rel, k[0]); c != 0 {
				return c
			}
			return strings.Compare(e.name, k[1])
		})
		if !ok {
			return x.changed(sub)
		}
	}
	e := x.entries[i]
	x.seen[i].Store(true)
	if e.mode != mode || (mode.IsRegular() && e.key != key && !sameContent(e, key)) || (mode&fs.ModeSymlink != 0 && e.link != link) {
		return x.changed(sub)
	}
	return nil
}

// sameContent reports whether the regular file e, now with key, still has
// the content its checksum read. Size and mtime must be as they were. The
// ctime and inode number also change with the content kept (a hard link
// made or removed, as pnpm's and ccache's stores do; a chown, a chmod to
// the same mode, restorecon's xattrs; and FUSE mounts such as sshfs
// without use_ino, gcsfuse or rclone number inodes anew): when only they
// differ, the file is read again and must have the digest the checksum
// used. The read follows the copy's: a write during the copy changes the
// ctime and, unless undone before this read, the digest.
func sameContent(e *entry, key FileKey) bool {
	if e.key.Size != key.Size || e.key.MtimeNs != key.MtimeNs {
		return false
	}
	sum, err := hashFile(e.hostPath())
	return err == nil && sum == e.sum
}

// Done reports a covered entry the copy did not read (it disappeared).
func (x *Expect) Done() error {
	for i := range x.seen {
		if !x.seen[i].Load() {
			e := x.entries[i]
			sub := string(e.appendRel(nil))
			if e.name == "" {
				sub = ""
			}
			return x.changed(sub)
		}
	}
	return nil
}

func (x *Expect) changed(sub string) error {
	return fmt.Errorf("%s: %w", path.Join(x.rel, sub), ErrChanged)
}
