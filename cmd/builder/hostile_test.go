package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/builder-dev/builder/progress"
	bolt "go.etcd.io/bbolt"
)

func TestPrintable(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"plain text, tabs\tand\nnewlines", "plain text, tabs\tand\nnewlines"},
		{"héllo ✓", "héllo ✓"},
		{"\x1b]0;pwned\x07\x1b[2J", `\x1b]0;pwned\x07\x1b[2J`},
		{"cr\roverwrite", `cr\x0doverwrite`},
		{"del\x7f c1\u009b", `del\x7f c1\u009b`},
		{"bad utf-8 \x9b[31m", `bad utf-8 \x9b[31m`},
		{"nul\x00", `nul\x00`},
	} {
		if got := printable(tt.in); got != tt.want {
			t.Errorf("printable(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

// TestHostileInputs runs the binary on inputs the review found accepted
// or echoed: a Dockerfile of terminal escapes, a NUL byte in RUN, a tag
// with "..", and --build-arg "=". Each fails before building, with an
// error that names the problem and contains no raw control byte.
func TestHostileInputs(t *testing.T) {
	c := cli{t: t, bin: builderBinary(t), root: t.TempDir()}
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	escapes := write("escapes.Dockerfile", "FROM scratch\n\x1b]0;pwned\x07\x1b[2J\x9b31m x\n")
	nul := write("nul.Dockerfile", "FROM scratch\nRUN echo a\x00b\n")
	plain := write("Dockerfile", "FROM scratch\n")
	for _, tt := range []struct {
		name string
		args []string
		want []string
	}{
		{"escapes", []string{"build", "-f", escapes, dir}, []string{"Dockerfile:2", `\x1b]0;pwned\x07\x1b[2J`}},
		{"NUL in RUN", []string{"build", "-f", nul, dir}, []string{"Dockerfile:2", "NUL byte"}},
		{"tag with ..", []string{"build", "-t", "a/../b:1", "-f", plain, dir}, []string{`invalid image name "a/../b:1"`, `path component ".."`}},
		{"empty build-arg name", []string{"build", "--build-arg", "=", "-f", plain, dir}, []string{`--build-arg "="`}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, stderr, code := c.run(tt.args...)
			if code == 0 {
				t.Fatalf("builder %v succeeded:\n%s", tt.args, stderr)
			}
			for _, w := range tt.want {
				if !strings.Contains(stderr, w) {
					t.Errorf("stderr lacks %q:\n%s", w, stderr)
				}
			}
			if i := strings.IndexFunc(stderr, progress.NeedsEscape); i >= 0 || strings.ContainsRune(stderr, 0x9b) || strings.Contains(stderr, "\x9b") {
				t.Errorf("stderr has a raw control character at %d: %q", i, stderr)
			}
		})
	}
}

// TestImagesSaysWhatItWaitsFor holds the state directory's lock, as a
// running build does, and runs `builder images`: it says it waits for the
// lock and which process holds it, then lists once the lock is released.
func TestImagesSaysWhatItWaitsFor(t *testing.T) {
	c := cli{t: t, bin: builderBinary(t), root: t.TempDir()}
	if _, stderr, code := c.run("images"); code != 0 {
		t.Fatalf("images exited %d: %s", code, stderr)
	}
	db, err := bolt.Open(filepath.Join(c.root, "meta.db"), 0o600, nil)
	if err != nil {
		t.Fatal(err)
	}
	time.AfterFunc(1500*time.Millisecond, func() { db.Close() })
	stdout, stderr, code := c.run("images")
	if code != 0 || !strings.Contains(stdout, "NAME") {
		t.Fatalf("images exited %d: %s%s", code, stdout, stderr)
	}
	want := fmt.Sprintf("waiting for the state directory lock on %s, held by pid %d (", c.root, os.Getpid())
	if !strings.Contains(stderr, want) {
		t.Errorf("images stderr = %q, want it to contain %q", stderr, want)
	}
}
