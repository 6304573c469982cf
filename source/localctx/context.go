// Package localctx selects and checksums files of a directory a build reads
// from: the build context (with its .dockerignore patterns) or another
// stage's file tree. A checksum covers exactly the files a COPY selects
// (path, type, mode, link target, content; not times), and a sum cache
// keyed by inode, size and times spares rereading unchanged files (and,
// for a tree where nothing changed, looking each one up: sums.go).
package localctx

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/patternmatcher"
)

// Tree is a directory that COPY selects files from: the build context (with
// its .dockerignore patterns) or another stage's file tree.
type Tree struct {
	Root     string
	excludes *patternmatcher.PatternMatcher
	// Sums, when set, remembers file digests between builds.
	Sums SumCache
	// Serial keeps all work on the calling goroutine: needed when Root is
	// mounted in a mount namespace private to the calling thread.
	Serial bool
	// Xattrs, when set, appends to b what a copy keeps of the extended
	// attributes of the regular file (reg) or directory at p: a checksum
	// then changes with them (filecopy.AppendXattrs).
	Xattrs func(b []byte, p string, reg bool) ([]byte, error)
	// Verify keeps what checksums covered and Match selected, for a copy
	// from the tree to check it reads the same files (expect.go).
	Verify bool

	settleOnce sync.Once
	settle     time.Duration // see settleMargin
	prewalks   *prewalks     // see UsePrewalk
	seen       expects       // see Verify
}

// NewTree returns the tree at root, leaving out what excludes
// (.dockerignore patterns) match.
func NewTree(root string, excludes []string) (*Tree, error) {
	t := &Tree{Root: root}
	if len(excludes) > 0 {
		pm, err := patternmatcher.New(excludes)
		if err != nil {
			return nil, fmt.Errorf(".dockerignore: %w", err)
		}
		t.excludes = pm
	}
	return t, nil
}

// Excluded reports whether rel (slash-separated, relative to the root) is
// left out by .dockerignore.
func (t *Tree) Excluded(rel string) bool {
	// One spelling per path ("/a/", "a//b/.." are "a"): the matcher treats
	// a leading slash as part of the name. Callers' paths are clean already;
	// the check keeps the copy's per-file calls from allocating.
	if rel != "" && (rel[0] == '/' || rel[len(rel)-1] == '/' || strings.Contains(rel, "//") || strings.Contains(rel, "/.") || strings.HasPrefix(rel, ".")) {
		rel = path.Clean("/" + rel)[1:]
	}
	if t.excludes == nil || rel == "" {
		return false
	}
	ok, err := t.excludes.MatchesOrParentMatches(rel)
	return err == nil && ok
}

// HasExceptions reports whether .dockerignore has "!" patterns, which can
// bring back files below an excluded directory.
func (t *Tree) HasExceptions() bool { return t.excludes != nil && t.excludes.Exclusions() }

// ErrNoMatch is wrapped when a COPY source selects nothing.
var ErrNoMatch = errors.New("no such file or directory in the build context")

// Match returns what source pattern src selects: relative slash paths,
// sorted. A plain path must exist; a pattern with wildcards may match
// nothing. Paths cannot leave the root.
func (t *Tree) Match(src string) ([]string, error) {
	clean := path.Clean("/" + filepath.ToSlash(src))[1:]
	if clean == "" {
		clean = "."
	}
	if !hasWildcard(clean) {
		if t.Excluded(clean) {
			return nil, fmt.Errorf("%s: %w (it is excluded by .dockerignore)", src, ErrNoMatch)
		}
		if _, err := os.Lstat(filepath.Join(t.Root, clean)); err != nil {
			return nil, fmt.Errorf("%s: %w", src, ErrNoMatch)
		}
		return []string{clean}, t.sameMatch(src, []string{clean})
	}
	// Walk only below the longest prefix without wildcards.
	dir := clean
	for hasWildcard(dir) {
		dir = path.Dir(dir)
	}
	var out []string
	depth := strings.Count(clean, "/") + 1
	err := filepath.WalkDir(filepath.Join(t.Root, dir), func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(t.Root, p)
		rel = filepath.ToSlash(rel)
		if rel == "." {
			return nil
		}
		n := strings.Count(rel, "/") + 1
		if globMatch(clean, rel) && !t.Excluded(rel) {
			out = append(out, rel)
		}
		if d.IsDir() && n >= depth && !strings.Contains(clean, "**") {
			return filepath.SkipDir
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	// A pattern that matches nothing selects nothing, as in BuildKit
	// (AllowEmptyWildcard): not an error.
	sort.Strings(out)
	return out, t.sameMatch(src, out)
}

// globMatch matches a slash path against a pattern whose "**" segments
// match any number of directories (as BuildKit's COPY does) and whose other
// segments follow path.Match.
func globMatch(pattern, name string) bool {
	if !strings.Contains(pattern, "**") {
		ok, _ := path.Match(pattern, name)
		return ok
	}
	return matchSegments(strings.Split(pattern, "/"), strings.Split(name, "/"))
}

func matchSegments(pat, name []string) bool {
	for len(pat) > 0 {
		if pat[0] == "**" {
			for i := 0; i <= len(name); i++ {
				if matchSegments(pat[1:], name[i:]) {
					return true
				}
			}
			return false
		}
		if len(name) == 0 {
			return false
		}
		if ok, _ := path.Match(pat[0], name[0]); !ok {
			return false
		}
		pat, name = pat[1:], name[1:]
	}
	return len(name) == 0
}

func hasWildcard(p string) bool { return strings.ContainsAny(p, "*?[\\") }

// Checksum digests what COPY would take from rel: for every file below it
// that .dockerignore keeps, its relative path, type, permission bits, link
// target and content. Owners and times are left out: COPY sets the owner,
// and a touched file must not invalidate the cache.
//
// extra, when set, holds COPY --exclude patterns, matched against paths
// relative to rel (a file's own name when rel is a file).
//
// File contents are hashed in parallel; with a SumCache, a file whose size,
// times and inode are unchanged since it was last hashed is not read again.
func (t *Tree) Checksum(rel string, extra *patternmatcher.PatternMatcher) (string, error) {
	sum, _, err := t.checksum(rel, extra)
	return sum, err
}

// maxDetail bounds how many files ChecksumDetail describes one by one.
const maxDetail = 10000

// ChecksumDetail is Checksum that also returns what describes each file it
// covered: a function giving a short digest of each (type, mode, content
// or link target) by path relative to the tree, for explaining cache
// misses. Past maxDetail files it gives nil. The descriptions are made
// only when asked for: a rebuild that finds the step cached explains
// nothing, and a large context would cost it a map of every file.
func (t *Tree) ChecksumDetail(rel string, extra *patternmatcher.PatternMatcher) (string, func() map[string]string, error) {
	sum, entries, err := t.checksum(rel, extra)
	if err != nil || len(entries) > maxDetail {
		return sum, func() map[string]string { return nil }, err
	}
	return sum, sync.OnceValue(func() map[string]string { return describe(rel, entries) }), nil
}

// describe maps each entry's path (below rel) to its type, mode and content
// digest or link target.
func describe(rel string, entries []*entry) map[string]string {
	files := make(map[string]string, len(entries))
	for _, e := range entries {
		v := strconv.FormatUint(uint64(e.mode), 8)
		switch {
		case e.mode.IsRegular():
			v += ":" + hex.EncodeToString(e.sum[:8])
		case e.mode&fs.ModeSymlink != 0:
			v += ":" + e.link
		}
		files[path.Join(rel, e.relPath())] = v
	}
	return files
}

// checksum returns the checksum of what rel selects and the entries it
// covered.
func (t *Tree) checksum(rel string, extra *patternmatcher.PatternMatcher) (string, []*entry, error) {
	var err error
	entries, walked, rec := t.takePrewalk(rel, extra)
	if entries == nil {
		walked = time.Now()
		if entries, err = t.collect(rel, extra); err != nil {
			return "", nil, fmt.Errorf("checksumming %s: %w", rel, err)
		}
	}
	if err := t.hashFiles(entries, walked, t.treeID(rel, extra), rec); err != nil {
		return "", nil, fmt.Errorf("checksumming %s: %w", rel, err)
	}
	h := sha256.New()
	buf := make([]byte, 0, hashBuf)
	for _, e := range entries {
		mode := e.mode
		buf = e.appendRel(buf)
		buf = append(buf, 0)
		buf = strconv.AppendUint(buf, uint64(uint32(mode.Type())|uint32(mode.Perm())|uint32(mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky))), 8)
		buf = append(buf, 0)
		switch {
		case mode.IsRegular():
			buf = append(buf, e.sum[:]...)
		case mode&fs.ModeSymlink != 0:
			buf = append(buf, e.link...)
			buf = append(buf, 0)
		}
		if t.Xattrs != nil && (mode.IsRegular() || mode.IsDir()) {
			if buf, err = t.Xattrs(buf, e.hostPath(), mode.IsRegular()); err != nil {
				return "", nil, fmt.Errorf("checksumming %s: %w", rel, err)
			}
		}
		if len(buf) > hashBuf-4<<10 {
			h.Write(buf)
			buf = buf[:0]
		}
	}
	h.Write(buf)
	t.remember(rel, entries)
	return hex.EncodeToString(h.Sum(nil)), entries, nil
}

// entry is one file COPY selects, with its content digest once known. Its
// paths are made from its directory's and its name only when needed, so
// that checking a large unchanged context allocates little.
type entry struct {
	dir  *dirInfo
	name string // "" for the copied source itself
	mode fs.FileMode
	key  FileKey
	link string
	sum  [32]byte
}

// dirInfo is a directory of the walk: its host path and its path relative
// to the copied source ("" at the top).
type dirInfo struct{ path, rel string }

// relPath is the entry's path relative to the copied source, "." for the
// source itself.
func (e *entry) relPath() string { return string(e.appendRel(nil)) }

func (e *entry) appendRel(b []byte) []byte {
	switch {
	case e.name == "":
		return append(b, '.')
	case e.dir.rel == "":
		return append(b, e.name...)
	}
	b = append(b, e.dir.rel...)
	b = append(b, '/')
	return append(b, e.name...)
}

// hostPath is the entry's path on the host.
func (e *entry) hostPath() string { return string(e.appendHost(nil)) }

func (e *entry) appendHost(b []byte) []byte {
	b = append(b, e.dir.path...)
	if e.name == "" {
		return b
	}
	b = append(b, '/')
	return append(b, e.name...)
}

// compareEntries orders entries by directory, then name: any fixed order
// serves the checksum, and this one needs no joined paths.
func compareEntries(a, b *entry) int {
	if c := strings.Compare(a.dir.rel, b.dir.rel); c != 0 {
		return c
	}
	return strings.Compare(a.name, b.name)
}

// collect lists what rel selects: the source itself first, then what is
// below it in compareEntries order.
func (t *Tree) collect(rel string, extra *patternmatcher.PatternMatcher) ([]*entry, error) {
	excluded := func(p string) bool {
		if extra == nil {
			return false
		}
		ok, err := extra.MatchesOrParentMatches(p)
		return err == nil && ok
	}
	// A top-level symlink is followed, as COPY does: inside the tree, as
	// if its root were "/" (solver/ops/copy.go resolves it the same way),
	// never to the host's files.
	top, err := securejoin.SecureJoin(t.Root, filepath.FromSlash(rel))
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(top)
	if err != nil {
		return nil, err
	}
	root := &entry{dir: &dirInfo{path: top}, mode: fi.Mode(), key: fileKey(fi)}
	if !fi.IsDir() {
		if excluded(path.Base(rel)) {
			return nil, nil
		}
		return []*entry{root}, nil
	}
	exceptions := t.HasExceptions() || (extra != nil && extra.Exclusions())
	noFilter := t.excludes == nil && extra == nil
	out, err := walk(top, t.Serial, func(dir *dirInfo, name string, isDir bool) (include, descend bool) {
		if noFilter {
			return true, true
		}
		sub := name
		if dir.rel != "" {
			sub = dir.rel + "/" + name
		}
		if !(t.Excluded(path.Join(rel, sub)) || excluded(sub)) {
			return true, true
		}
		// Without "!" exceptions nothing below can come back.
		return false, isDir && exceptions
	})
	if err != nil {
		return nil, err
	}
	// Blocks are per directory (but for the portable walk): sort each by
	// name, and the blocks by directory.
	n := 1
	for _, b := range out {
		slices.SortFunc(b, compareEntries)
		n += len(b)
	}
	slices.SortFunc(out, func(a, b []*entry) int { return compareEntries(a[0], b[0]) })
	all := make([]*entry, 0, n)
	all = append(all, root)
	for _, b := range out {
		all = append(all, b...)
	}
	return all, nil
}

func hashFile(p string) ([32]byte, error) {
	var sum [32]byte
	f, err := os.Open(p)
	if err != nil {
		return sum, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return sum, fmt.Errorf("reading %s: %w", p, err)
	}
	copy(sum[:], h.Sum(nil))
	return sum, nil
}
