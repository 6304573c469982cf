package gitrepo

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestResolveGitRefWithoutGit(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	_, _, err := ResolveRef(t.Context(), "git://127.0.0.1:1/repo.git", "main")
	if !errors.Is(err, ErrNoGit) || !strings.Contains(err.Error(), "install") {
		t.Errorf("ResolveRef without git = %v, want ErrNoGit saying how to install it", err)
	}
}

// TestResolveAndCheckout uses a local repository path, which git accepts
// as a remote (ADD itself only takes network URLs).
func TestResolveAndCheckout(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Skip("git not installed")
	}
	repo := t.TempDir()
	run := func(dir string, args ...string) string {
		t.Helper()
		cmd := exec.Command("git", args...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), "GIT_CONFIG_NOSYSTEM=1", "GIT_CONFIG_GLOBAL=/dev/null",
			"GIT_AUTHOR_NAME=t", "GIT_AUTHOR_EMAIL=t@example.com", "GIT_COMMITTER_NAME=t", "GIT_COMMITTER_EMAIL=t@example.com")
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("git %v: %v\n%s", args, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	run(repo, "init", "-q", "-b", "main")
	os.WriteFile(filepath.Join(repo, "f"), []byte("one"), 0o644)
	run(repo, "add", "f")
	run(repo, "commit", "-q", "-m", "one")
	run(repo, "tag", "-a", "-m", "annotated", "v1")
	run(repo, "tag", "light")
	one := run(repo, "rev-parse", "HEAD")
	os.WriteFile(filepath.Join(repo, "f"), []byte("two"), 0o644)
	run(repo, "commit", "-q", "-am", "two")
	two := run(repo, "rev-parse", "HEAD")

	tests := []struct {
		ref, commit, fullRef string
	}{
		{"", two, "HEAD"},
		{"main", two, "refs/heads/main"},
		{"v1", one, "refs/tags/v1"},
		{"light", one, "refs/tags/light"},
		{"refs/tags/v1", one, "refs/tags/v1"},
		{one, one, ""},
	}
	for _, tt := range tests {
		commit, fullRef, err := ResolveRef(t.Context(), repo, tt.ref)
		if err != nil || commit != tt.commit || fullRef != tt.fullRef {
			t.Errorf("ResolveRef(%q) = %s, %q, %v; want %s, %q", tt.ref, commit, fullRef, err, tt.commit, tt.fullRef)
		}
	}
	if _, _, err := ResolveRef(t.Context(), repo, "nope"); err == nil {
		t.Error("ResolveRef(nope) succeeded")
	}

	dir := t.TempDir()
	if err := Checkout(t.Context(), "file://"+repo, "refs/tags/v1", one, dir); err != nil {
		t.Fatal(err)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "f")); err != nil || string(b) != "one" {
		t.Errorf("checkout of v1: f = %q, %v", b, err)
	}
}

// TestIsCommit: full SHA-1 and SHA-256 hashes in lowercase hex only.
func TestIsCommit(t *testing.T) {
	sha1 := "0123456789abcdef0123456789abcdef01234567"
	sha256 := sha1 + "0123456789abcdef01234567"
	for ref, want := range map[string]bool{
		sha1: true, sha256: true, sha1[:39]: false, sha1 + "8": false, sha256 + "0": false,
		"0123456789ABCDEF0123456789abcdef01234567": false, "g123456789abcdef0123456789abcdef01234567": false,
		"main": false, "": false, "refs/heads/" + sha1[:29]: false,
	} {
		if got := IsCommit(ref); got != want {
			t.Errorf("IsCommit(%q) = %v, want %v", ref, got, want)
		}
	}
}
