package localctx

import (
	"bytes"
	"errors"
	"os"
	"path"
	"path/filepath"
	"strings"
	"testing"

	"github.com/moby/patternmatcher"
	"github.com/moby/patternmatcher/ignorefile"
)

// FuzzDockerignore reads arbitrary .dockerignore files and matches
// arbitrary paths against them. Beyond not panicking: without "!"
// exceptions, what excludes a directory excludes everything below it.
// Seeds are in testdata/fuzz/FuzzDockerignore.
func FuzzDockerignore(f *testing.F) {
	f.Add([]byte("*.log\n!keep.log\n# comment\nsub/**/x\n"), "sub/a/x")
	f.Add([]byte("/abs\n../up\n[a-\n\\\n"), "abs/b")
	f.Add([]byte("**\n!**/*.go\n"), "a/b.go")
	f.Fuzz(func(t *testing.T, ignore []byte, rel string) {
		patterns, err := ignorefile.ReadAll(bytes.NewReader(ignore))
		if err != nil {
			return
		}
		tree, err := NewTree(t.TempDir(), patterns)
		if err != nil {
			return
		}
		if tree.Excluded("") || tree.Excluded(".") {
			t.Fatalf("patterns %q exclude the context root", patterns)
		}
		excluded := tree.Excluded(rel)
		if excluded && !tree.HasExceptions() {
			if child := rel + "/child"; !tree.Excluded(child) {
				t.Fatalf("patterns %q exclude %q but not %q", patterns, rel, child)
			}
		}
	})
}

// fuzzContext builds a context directory from spec, one entry a line:
// "path" a file (content after a tab), "path/" a directory, "path -> target"
// a symlink; $OUT in a target stands for a directory outside the context.
// Names are confined to the context; targets are not, as in real contexts.
func fuzzContext(t *testing.T, root, outside string, spec []byte) {
	for i, line := range strings.Split(string(spec), "\n") {
		if i > 64 {
			return
		}
		name, target, isLink := strings.Cut(line, " -> ")
		name, content, _ := strings.Cut(name, "\t")
		clean := path.Clean("/" + name)[1:]
		if clean == "" || strings.ContainsRune(clean, 0) {
			continue
		}
		p := filepath.Join(root, clean)
		os.MkdirAll(filepath.Dir(p), 0o755)
		switch {
		case isLink:
			os.Symlink(strings.ReplaceAll(target, "$OUT", outside), p)
		case strings.HasSuffix(name, "/"):
			os.MkdirAll(p, 0o755)
		default:
			os.WriteFile(p, []byte(content), 0o644)
		}
	}
}

// FuzzChecksum selects files of an arbitrary context with an arbitrary
// COPY source and --exclude pattern, and checksums them as COPY does. The
// checksum must be deterministic, and must not change when a file outside
// the context changes: it may only cover what the context holds.
// Seeds are in testdata/fuzz/FuzzChecksum.
func FuzzChecksum(f *testing.F) {
	f.Add([]byte("a\thello\nsub/b\tx\nsub/c -> b\nempty/\n"), "sub", "c")
	f.Add([]byte("link -> $OUT\nrel -> ../../x\nd/in -> $OUT/secret\n"), "*", "")
	f.Add([]byte("x/y/z\t1\nx/w\t2\n"), "x/*/z", "**/w")
	f.Fuzz(func(t *testing.T, spec []byte, src, exclude string) {
		base := t.TempDir()
		root, outside := filepath.Join(base, "ctx"), filepath.Join(base, "outside")
		os.MkdirAll(root, 0o755)
		os.MkdirAll(outside, 0o755)
		secret := filepath.Join(outside, "secret")
		os.WriteFile(secret, []byte("one"), 0o644)
		fuzzContext(t, root, outside, spec)
		tree, err := NewTree(root, nil)
		if err != nil {
			t.Fatal(err)
		}
		var extra *patternmatcher.PatternMatcher
		if exclude != "" {
			if extra, err = patternmatcher.New([]string{exclude}); err != nil {
				return
			}
		}
		matched, err := tree.Match(src)
		if err != nil {
			return
		}
		sums := func() []string {
			var out []string
			for _, m := range matched {
				if m == ".." || strings.HasPrefix(m, "../") || path.IsAbs(m) {
					t.Fatalf("Match(%q) = %q, outside the context", src, m)
				}
				sum, err := tree.Checksum(m, extra)
				if err != nil {
					sum = "error"
					if errors.Is(err, os.ErrNotExist) {
						sum = "missing"
					}
				}
				out = append(out, sum)
			}
			return out
		}
		first := sums()
		if again := sums(); !equalStrings(first, again) {
			t.Fatalf("checksums of %q differ between two runs: %q, %q", matched, first, again)
		}
		os.WriteFile(secret, []byte("two"), 0o644)
		os.WriteFile(filepath.Join(outside, "new"), nil, 0o644)
		if after := sums(); !equalStrings(first, after) {
			t.Fatalf("checksums of %q changed with a file outside the context: %q, %q", matched, first, after)
		}
	})
}

func equalStrings(a, b []string) bool { return strings.Join(a, "\x00") == strings.Join(b, "\x00") }
