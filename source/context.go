package source

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
	"sort"
	"strings"

	"github.com/moby/patternmatcher"
)

// Tree is a directory that COPY selects files from: the build context (with
// its .dockerignore patterns) or another stage's file tree.
type Tree struct {
	Root     string
	excludes *patternmatcher.PatternMatcher
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
	if t.excludes == nil || rel == "." || rel == "" {
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
// sorted. A plain path must exist; a pattern with wildcards must match
// something. Paths cannot leave the root.
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
		return []string{clean}, nil
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
		if ok, _ := path.Match(clean, rel); ok && !t.Excluded(rel) {
			out = append(out, rel)
		}
		if d.IsDir() && n >= depth {
			return filepath.SkipDir
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%s: %w", src, err)
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%s: %w (the pattern matched no file)", src, ErrNoMatch)
	}
	sort.Strings(out)
	return out, nil
}

func hasWildcard(p string) bool { return strings.ContainsAny(p, "*?[\\") }

// Checksum digests what COPY would take from rel: for every file below it
// that .dockerignore keeps, its relative path, type, permission bits, link
// target and content. Owners and times are left out: COPY sets the owner,
// and a touched file must not invalidate the cache.
//
// extra, when set, holds COPY --exclude patterns, matched against paths
// relative to rel (a file's own name when rel is a file).
func (t *Tree) Checksum(rel string, extra *patternmatcher.PatternMatcher) (string, error) {
	excluded := func(p string) bool {
		if extra == nil {
			return false
		}
		ok, err := extra.MatchesOrParentMatches(p)
		return err == nil && ok
	}
	h := sha256.New()
	top := filepath.Join(t.Root, filepath.FromSlash(rel))
	// A top-level symlink is followed, as COPY does.
	if fi, err := os.Stat(top); err != nil {
		return "", fmt.Errorf("%s: %w", rel, err)
	} else if !fi.IsDir() {
		if excluded(path.Base(rel)) {
			return hex.EncodeToString(h.Sum(nil)), nil
		}
		if err := hashEntry(h, ".", top, fi); err != nil {
			return "", err
		}
		return hex.EncodeToString(h.Sum(nil)), nil
	}
	err := filepath.WalkDir(top, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		sub, _ := filepath.Rel(top, p)
		full := path.Join(rel, filepath.ToSlash(sub))
		if sub != "." && (t.Excluded(full) || excluded(filepath.ToSlash(sub))) {
			// Without "!" exceptions nothing below can come back.
			if d.IsDir() && (t.excludes == nil || !t.excludes.Exclusions()) && (extra == nil || !extra.Exclusions()) {
				return filepath.SkipDir
			}
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		return hashEntry(h, filepath.ToSlash(sub), p, fi)
	})
	if err != nil {
		return "", fmt.Errorf("checksumming %s: %w", rel, err)
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

func hashEntry(h io.Writer, rel, p string, fi fs.FileInfo) error {
	mode := fi.Mode()
	fmt.Fprintf(h, "%s\x00%o\x00", rel, uint32(mode.Type())|uint32(mode.Perm())|uint32(mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)))
	switch {
	case mode.IsRegular():
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		fh := sha256.New()
		if _, err := io.Copy(fh, f); err != nil {
			return fmt.Errorf("reading %s: %w", p, err)
		}
		fmt.Fprintf(h, "%x\x00", fh.Sum(nil))
	case mode&fs.ModeSymlink != 0:
		target, err := os.Readlink(p)
		if err != nil {
			return err
		}
		fmt.Fprintf(h, "%s\x00", target)
	}
	return nil
}
