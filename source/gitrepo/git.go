// Package gitrepo fetches the git repositories ADD names with the host's
// git command: a ref resolved to a commit, and a checkout of it.
package gitrepo

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
)

// ErrNoGit is returned when the git command is not installed.
var ErrNoGit = errors.New("git is not installed on this host; install it (apt-get install git) to ADD a git repository")

// IsCommit reports whether ref is a full commit hash (SHA-1 or SHA-256):
// 40 or 64 lowercase hex digits. (Not a regexp: compiling one at start-up
// cost every builder command half a millisecond.)
func IsCommit(ref string) bool {
	if len(ref) != 40 && len(ref) != 64 {
		return false
	}
	for _, c := range []byte(ref) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// git runs the git command with prompts off and without the user's or the
// system's configuration, so a build does not depend on them.
func git(ctx context.Context, dir string, args ...string) ([]byte, error) {
	bin, err := exec.LookPath("git")
	if err != nil {
		return nil, ErrNoGit
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(),
		"GIT_TERMINAL_PROMPT=0",
		"GIT_CONFIG_NOSYSTEM=1",
		"GIT_CONFIG_GLOBAL=/dev/null",
		"GIT_ASKPASS=true",
		"LC_ALL=C",
	)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		msg := strings.TrimSpace(stderr.String())
		if msg == "" {
			msg = err.Error()
		}
		return nil, fmt.Errorf("git %s: %s", args[0], msg)
	}
	return stdout.Bytes(), nil
}

// ResolveRef returns the commit ref names on remote and the full name
// of the ref ("refs/heads/main", "HEAD"): a full commit hash is taken as it
// is (with no name); otherwise the remote is asked (git ls-remote), and a
// branch is preferred to a tag of the same name. "" is the remote's HEAD.
func ResolveRef(ctx context.Context, remote, ref string) (commit, fullRef string, err error) {
	if IsCommit(ref) {
		return ref, "", nil
	}
	want := ref
	if want == "" {
		want = "HEAD"
	}
	// A pattern matches a ref name's tail, so an annotated tag's peeled
	// entry ("refs/tags/v1^{}") needs its own.
	out, err := git(ctx, "", "ls-remote", "--", remote, want, want+"^{}")
	if err != nil {
		return "", "", err
	}
	refs := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		sha, name, ok := strings.Cut(sc.Text(), "\t")
		if ok {
			refs[name] = sha
		}
	}
	candidates := []string{want}
	if !strings.HasPrefix(want, "refs/") && want != "HEAD" {
		candidates = []string{"refs/heads/" + want, "refs/tags/" + want}
	}
	for _, c := range candidates {
		// An annotated tag's commit is its peeled value.
		if sha, ok := refs[c+"^{}"]; ok {
			return sha, c, nil
		}
		if sha, ok := refs[c]; ok {
			return sha, c, nil
		}
	}
	return "", "", fmt.Errorf("no branch or tag %q in the repository", ref)
}

// Checkout checks commit out of remote into the empty directory dir,
// fetching only that commit where the remote allows it (fullRef, the name
// it was resolved from, is fetched otherwise), with submodules. dir keeps its
// .git directory; the caller drops it unless asked to keep it.
func Checkout(ctx context.Context, remote, fullRef, commit, dir string) error {
	steps := [][]string{
		{"init", "-q", "."},
		{"remote", "add", "origin", remote},
	}
	for _, s := range steps {
		if _, err := git(ctx, dir, s...); err != nil {
			return err
		}
	}
	if _, err := git(ctx, dir, "fetch", "-q", "--depth=1", "--no-tags", "origin", commit); err != nil {
		// Servers that refuse to serve an unadvertised commit: fetch the
		// ref it came from, whole history if it is not the tip any more.
		from := fullRef
		if from == "" {
			from = "HEAD"
		}
		if _, err2 := git(ctx, dir, "fetch", "-q", "--depth=1", "--no-tags", "origin", from); err2 != nil || !hasCommit(ctx, dir, commit) {
			if _, err3 := git(ctx, dir, "fetch", "-q", "--tags", "origin", "+refs/heads/*:refs/remotes/origin/*"); err3 != nil {
				return errors.Join(err, err3)
			}
		}
	}
	if _, err := git(ctx, dir, "-c", "advice.detachedHead=false", "checkout", "-q", commit); err != nil {
		return err
	}
	if branch, ok := strings.CutPrefix(fullRef, "refs/heads/"); ok {
		// Name the branch, so that a kept .git says where it came from;
		// other checkouts stay detached.
		if _, err := git(ctx, dir, "checkout", "-q", "-B", branch); err != nil {
			return err
		}
	}
	if _, err := os.Stat(dir + "/.gitmodules"); err == nil {
		if _, err := git(ctx, dir, "submodule", "update", "-q", "--init", "--recursive", "--depth=1"); err != nil {
			return err
		}
	}
	return nil
}

func hasCommit(ctx context.Context, dir, commit string) bool {
	_, err := git(ctx, dir, "cat-file", "-e", commit+"^{commit}")
	return err == nil
}
