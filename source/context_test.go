package source

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func makeTree(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, content := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

func TestMatch(t *testing.T) {
	dir := makeTree(t, map[string]string{
		"a.txt": "a", "b.txt": "b", "c.md": "c", "sub/d.txt": "d", "sub/deep/e.txt": "e", "ignored.txt": "x",
	})
	tree, err := NewTree(dir, []string{"ignored.txt", "sub/deep"})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		src  string
		want string
		err  bool
	}{
		{"a.txt", "a.txt", false},
		{"./sub/../a.txt", "a.txt", false},
		{"/a.txt", "a.txt", false},
		{"../../a.txt", "a.txt", false},
		{"*.txt", "a.txt,b.txt", false},
		{"sub/*.txt", "sub/d.txt", false},
		{"sub", "sub", false},
		{".", ".", false},
		{"missing.txt", "", true},
		{"*.go", "", true},
		{"ignored.txt", "", true},
		{"sub/deep/e.txt", "", true},
	}
	for _, tt := range tests {
		got, err := tree.Match(tt.src)
		if (err != nil) != tt.err || strings.Join(got, ",") != tt.want {
			t.Errorf("Match(%q) = %v, %v; want %q, error %v", tt.src, got, err, tt.want, tt.err)
		}
		if err != nil && !errors.Is(err, ErrNoMatch) {
			t.Errorf("Match(%q) error %v does not wrap ErrNoMatch", tt.src, err)
		}
	}
}

func TestChecksumSeesContentNotTimes(t *testing.T) {
	dir := makeTree(t, map[string]string{"src/main.go": "package main", "src/util.go": "package util", "other.txt": "x"})
	tree, _ := NewTree(dir, nil)
	sum := func() string {
		s, err := tree.Checksum("src", nil)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	before := sum()
	steps := []struct {
		name   string
		change func()
		same   bool
	}{
		{"touch", func() { os.Chtimes(filepath.Join(dir, "src/main.go"), time.Now(), time.Now().Add(time.Hour)) }, true},
		{"unrelated file", func() { os.WriteFile(filepath.Join(dir, "other.txt"), []byte("y"), 0o644) }, true},
		{"edit", func() { os.WriteFile(filepath.Join(dir, "src/main.go"), []byte("package main // x"), 0o644) }, false},
		{"chmod", func() { os.Chmod(filepath.Join(dir, "src/util.go"), 0o755) }, false},
		{"new file", func() { os.WriteFile(filepath.Join(dir, "src/new.go"), nil, 0o644) }, false},
		{"symlink", func() { os.Symlink("main.go", filepath.Join(dir, "src/link")) }, false},
	}
	for _, s := range steps {
		s.change()
		after := sum()
		if (after == before) != s.same {
			t.Errorf("after %s: checksum changed = %v, want %v", s.name, after != before, !s.same)
		}
		before = after
	}
}
