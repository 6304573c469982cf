// Package sumprune decides what a prune of the context file digest memory
// (cache.FileSums) drops: which root of tree records owns a per-file
// record, which records can no longer match their file, and which roots
// go when over the bound. The cache package reads and deletes the records.
package sumprune

import (
	"errors"
	"io/fs"
	"path/filepath"
	"sort"
	"syscall"
	"time"
)

// Root is a root of tree records (a build context's directory), or the
// orphans: per-file records under no root.
type Root struct {
	// Used is when a build last used the root's records (zero: unknown).
	Used time.Time
	// Trees is the digests in its tree records, Files its per-file
	// records kept.
	Trees, Files int
	Drop         bool
}

// Owners returns a function giving the root that owns the per-file
// records of a directory: the nearest root at or above it (roots are by
// cleaned path), else orphans.
func Owners(roots map[string]*Root, orphans *Root) func(dir string) *Root {
	memo := map[string]*Root{}
	var find func(string) *Root
	find = func(dir string) *Root {
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

// Recent is how long after its last use a root is kept whatever the bound
// (a variable for tests of callers that cannot set a root's use time).
var Recent = time.Hour

// Bound drops the orphans, then the roots least recently used, until at
// most max digests are left, but never the root used last nor a root used
// within Recent of now: a context larger than the bound would otherwise
// lose all its digests at every prune and be hashed again at every build.
// It returns how many digests are left (more than max when those roots
// are), and whether a root it dropped (or the orphans) has per-file
// records to remove.
func Bound(roots map[string]*Root, orphans *Root, max int, now time.Time) (kept int, again bool) {
	all := []*Root{orphans}
	total := orphans.Files
	for _, r := range roots {
		if !r.Drop {
			all = append(all, r)
			total += r.Files + r.Trees
		}
	}
	rest := all[1:]
	sort.SliceStable(rest, func(i, j int) bool { return rest[i].Used.Before(rest[j].Used) })
	if len(rest) > 0 {
		all = all[:len(all)-1] // the root used last stays
	}
	for _, r := range all {
		if total <= max {
			break
		}
		if r != orphans && !r.Used.IsZero() && !r.Used.Before(now.Add(-Recent)) {
			break // this one and the rest were used within Recent
		}
		r.Drop = true
		total -= r.Files + r.Trees
		again = again || r.Files > 0
	}
	return total, again
}

// Key is what must be unchanged for a remembered file digest to hold, as
// source/localctx's walk reads it (cache.FileKey).
type Key struct {
	Size, MtimeNs, CtimeNs int64
	Ino                    uint64
}

// Files looks at the files of records, each directory once.
type Files struct{ gone map[string]bool }

// NewFiles returns an empty Files.
func NewFiles() *Files { return &Files{gone: map[string]bool{}} }

// DirGone says whether dir, or a directory above it, is gone.
func (c *Files) DirGone(dir string) bool {
	if g, ok := c.gone[dir]; ok {
		return g
	}
	parent := filepath.Dir(dir)
	g := parent != dir && c.DirGone(parent)
	if !g {
		_, err := Stat(dir)
		g = isGone(err)
	}
	c.gone[dir] = g
	return g
}

// Current says whether a record of path can still match the file there:
// matches says whether the record holds for the file's key. A file that
// cannot be looked at for another reason than its absence keeps its
// record.
func (c *Files) Current(path string, matches func(Key) bool) bool {
	if c.DirGone(filepath.Dir(path)) {
		return false
	}
	k, err := Stat(path)
	if err != nil {
		return !isGone(err)
	}
	return matches(k)
}

func isGone(err error) bool {
	return errors.Is(err, fs.ErrNotExist) || errors.Is(err, syscall.ENOTDIR)
}
