// Package remote recognises the remote sources of ADD, as BuildKit's
// Dockerfile frontend does: git repositories (git://, ssh://, git@host:path,
// http(s) URLs ending in .git, each with #ref:subdir) and URLs to
// download, and makes their llb source ops.
package remote

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"strings"

	"github.com/builder-dev/builder/llb"
)

// IsHTTP reports whether an ADD source is a URL to download.
func IsHTTP(src string) bool {
	return strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://")
}

// Filename is the name ADD gives a file downloaded from rawURL: the
// last element of its path, or "__unnamed__" when the path has none, as
// BuildKit does.
func Filename(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "__unnamed__"
	}
	if base := path.Base(u.Path); base != "." && base != "/" && base != ".." {
		return base
	}
	return "__unnamed__"
}

// Git is a git repository source of ADD, such as
// "https://host/repo.git#v1.2:docs": the remote, a ref (branch, tag or
// commit; "" for the remote's HEAD) and a subdirectory.
type Git struct {
	remote, ref, subdir string
}

// ParseGit recognises the git sources ADD accepts: git://, ssh://,
// git@host:path, and http(s) URLs whose path ends in ".git", each with an
// optional "#ref[:subdir]" fragment. isGit is false for anything else; err
// is set for a git source written wrongly.
func ParseGit(s string) (ref Git, isGit bool, err error) {
	remote, frag, _ := strings.Cut(s, "#")
	switch {
	case strings.HasPrefix(remote, "git@"):
		if !strings.Contains(remote, ":") {
			return Git{}, true, errors.New("a git@ source must read git@host:path")
		}
	case strings.Contains(remote, "://"):
		u, err := url.Parse(remote)
		if err != nil {
			return Git{}, false, nil
		}
		switch u.Scheme {
		case "git", "ssh":
		case "http", "https":
			if !strings.HasSuffix(u.Path, ".git") {
				return Git{}, false, nil
			}
		default:
			return Git{}, false, nil
		}
		if u.RawQuery != "" {
			return Git{}, true, errors.New("query parameters of git URLs (?ref=, ?subdir=, ...) are not supported yet; use #ref:subdir")
		}
		if u.Host == "" {
			return Git{}, true, errors.New("the git URL has no host")
		}
	default:
		return Git{}, false, nil
	}
	ref.remote = remote
	ref.ref, ref.subdir, _ = strings.Cut(frag, ":")
	if strings.HasPrefix(ref.ref, "-") {
		return Git{}, true, fmt.Errorf("invalid git ref %q", ref.ref)
	}
	if ref.subdir != "" {
		ref.subdir = path.Clean("/" + ref.subdir)[1:]
	}
	return ref, true, nil
}

// isCommitPrefix reports whether s is 4 to 64 lowercase hex digits: a
// commit hash or a prefix of one. (Not a regexp: compiling one at start-up
// cost every builder command a millisecond.)
func isCommitPrefix(s string) bool {
	if len(s) < 4 || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		if (c < '0' || c > '9') && (c < 'a' || c > 'f') {
			return false
		}
	}
	return true
}

// Op makes the op of the git source with ADD's --keep-git-dir and
// --checksum (a commit hash or a prefix of one).
func (g Git) Op(keepGitDir *bool, checksum string) (llb.GitOp, error) {
	op := llb.GitOp{Remote: g.remote, Ref: g.ref, Subdir: g.subdir}
	if keepGitDir != nil {
		op.KeepGitDir = *keepGitDir
	}
	if checksum != "" {
		if !isCommitPrefix(checksum) {
			return op, fmt.Errorf("--checksum=%s: for a git source it is a commit hash", checksum)
		}
		op.Checksum = checksum
	}
	return op, nil
}
