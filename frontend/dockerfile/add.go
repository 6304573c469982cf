package dockerfile

import (
	"errors"
	"fmt"
	"net/url"
	"path"
	"regexp"
	"strings"

	"github.com/builder-dev/builder/llb"
	"github.com/moby/buildkit/frontend/dockerfile/instructions"
	"github.com/opencontainers/go-digest"
)

// dispatchAdd lowers ADD. Local files are copied like COPY, and the copy
// op unpacks local archives. A URL becomes an http source vertex and a git
// repository a git source vertex, each copied by its own copy op (so an ADD
// mixing kinds of sources makes one layer per remote source, plus one for
// the local ones).
//
// --unpack (Dockerfile 1.17) says whether archives are unpacked, as
// BuildKit's AttemptUnpack: by default local ones are and downloaded ones
// are not; --unpack=true unpacks a downloaded archive into the destination
// directory, --unpack=false copies a local archive as a file. A source
// that is not an archive is copied as it is either way; git sources
// ignore it.
func (c *converter) dispatchAdd(st *stageState, cmd *instructions.AddCommand) error {
	unpackLocal, unpackRemote := true, false
	if cmd.Unpack != nil {
		unpackLocal, unpackRemote = *cmd.Unpack, *cmd.Unpack
	}
	type remote struct {
		src string
		git *gitRef
	}
	var remotes []remote
	var local []string
	for _, src := range cmd.SourcePaths {
		g, isGit, err := parseGitRef(src)
		switch {
		case err != nil:
			return fmt.Errorf("%s: %w", src, err)
		case isGit:
			remotes = append(remotes, remote{src: src, git: &g})
		case isHTTPSource(src):
			remotes = append(remotes, remote{src: src})
		case strings.Contains(src, "://"):
			return fmt.Errorf("%s: unsupported URL scheme; ADD takes http://, https:// and git URLs", src)
		default:
			local = append(local, src)
		}
	}
	if cmd.Checksum != "" {
		// As BuildKit.
		if len(cmd.SourcePaths) != 1 {
			return errors.New("--checksum can't be specified for multiple sources")
		}
		if len(remotes) == 0 {
			return errors.New("--checksum requires HTTP(S) or Git sources")
		}
	}
	if len(remotes) == 0 {
		return c.dispatchCopy(st, cmd, copySpec{
			SourcesAndDest: cmd.SourcesAndDest, name: "ADD", chown: cmd.Chown, chmod: cmd.Chmod, add: unpackLocal,
			link: cmd.Link, excludes: cmd.ExcludePatterns,
		})
	}
	if cmd.Chmod != "" {
		if _, err := llb.ParseChmod(cmd.Chmod); err != nil {
			return fmt.Errorf("--chmod: %w", err)
		}
	}
	dest := absPath(st.image.Config.WorkingDir, cmd.DestPath)
	for _, r := range remotes {
		var srcVertex *llb.Vertex
		var from string
		meta := c.meta(st, "ADD "+r.src, cmd.Location())
		if r.git != nil {
			op, err := gitOp(*r.git, cmd.KeepGitDir, cmd.Checksum)
			if err != nil {
				return fmt.Errorf("%s: %w", r.src, err)
			}
			srcVertex = llb.NewVertex(op, nil, meta)
			from = "/"
		} else {
			op := llb.HTTPOp{URL: r.src, Filename: urlFilename(r.src)}
			if cmd.Checksum != "" {
				d, err := digest.Parse(cmd.Checksum)
				if err != nil {
					return fmt.Errorf("--checksum=%s: %w", cmd.Checksum, err)
				}
				op.Checksum = d.String()
			}
			srcVertex = llb.NewVertex(op, nil, meta)
			from = "/" + escapePattern(op.Filename)
		}
		cp := llb.CopyOp{Sources: []string{from}, Dest: dest, Chown: cmd.Chown, Chmod: cmd.Chmod, Link: cmd.Link}
		if r.git != nil {
			cp.Excludes = cmd.ExcludePatterns
		} else {
			// The copy op's Add unpacks an archive; downloads only on --unpack.
			cp.Add = unpackRemote
		}
		st.vertex = llb.NewVertex(cp, []*llb.Vertex{st.vertex, srcVertex}, c.meta(st, fmt.Sprint(cmd), cmd.Location()))
		c.addHistory(st, copyHistory(copySpec{
			SourcesAndDest: instructions.SourcesAndDest{SourcePaths: []string{r.src}, DestPath: cmd.DestPath},
			name:           "ADD", chown: cmd.Chown, chmod: cmd.Chmod,
		}), false)
	}
	if len(local) == 0 && len(cmd.SourceContents) == 0 {
		return nil
	}
	sd := cmd.SourcesAndDest
	sd.SourcePaths = local
	return c.dispatchCopy(st, cmd, copySpec{
		SourcesAndDest: sd, name: "ADD", chown: cmd.Chown, chmod: cmd.Chmod, add: unpackLocal,
		link: cmd.Link, excludes: cmd.ExcludePatterns,
	})
}

func isHTTPSource(src string) bool {
	return strings.HasPrefix(src, "http://") || strings.HasPrefix(src, "https://")
}

// urlFilename is the name ADD gives a file downloaded from rawURL: the
// last element of its path, or "__unnamed__" when the path has none, as
// BuildKit does.
func urlFilename(rawURL string) string {
	u, err := url.Parse(rawURL)
	if err != nil {
		return "__unnamed__"
	}
	if base := path.Base(u.Path); base != "." && base != "/" && base != ".." {
		return base
	}
	return "__unnamed__"
}

// escapePattern quotes the wildcard characters of a file name, which the
// copy op's sources treat as a pattern.
func escapePattern(name string) string {
	var b strings.Builder
	for _, r := range name {
		if strings.ContainsRune(`*?[\`, r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// gitRef is a git repository source of ADD, such as
// "https://host/repo.git#v1.2:docs": the remote, a ref (branch, tag or
// commit; "" for the remote's HEAD) and a subdirectory.
type gitRef struct {
	remote, ref, subdir string
}

// parseGitRef recognises the git sources ADD accepts: git://, ssh://,
// git@host:path, and http(s) URLs whose path ends in ".git", each with an
// optional "#ref[:subdir]" fragment. isGit is false for anything else; err
// is set for a git source written wrongly.
func parseGitRef(s string) (ref gitRef, isGit bool, err error) {
	remote, frag, _ := strings.Cut(s, "#")
	switch {
	case strings.HasPrefix(remote, "git@"):
		if !strings.Contains(remote, ":") {
			return gitRef{}, true, errors.New("a git@ source must read git@host:path")
		}
	case strings.Contains(remote, "://"):
		u, err := url.Parse(remote)
		if err != nil {
			return gitRef{}, false, nil
		}
		switch u.Scheme {
		case "git", "ssh":
		case "http", "https":
			if !strings.HasSuffix(u.Path, ".git") {
				return gitRef{}, false, nil
			}
		default:
			return gitRef{}, false, nil
		}
		if u.RawQuery != "" {
			return gitRef{}, true, errors.New("query parameters of git URLs (?ref=, ?subdir=, ...) are not supported yet; use #ref:subdir")
		}
		if u.Host == "" {
			return gitRef{}, true, errors.New("the git URL has no host")
		}
	default:
		return gitRef{}, false, nil
	}
	ref.remote = remote
	ref.ref, ref.subdir, _ = strings.Cut(frag, ":")
	if strings.HasPrefix(ref.ref, "-") {
		return gitRef{}, true, fmt.Errorf("invalid git ref %q", ref.ref)
	}
	if ref.subdir != "" {
		ref.subdir = path.Clean("/" + ref.subdir)[1:]
	}
	return ref, true, nil
}

var commitPrefix = regexp.MustCompile(`^[0-9a-f]{4,64}$`)

// gitOp makes the op of a git source with ADD's --keep-git-dir and
// --checksum (a commit hash or a prefix of one).
func gitOp(g gitRef, keepGitDir *bool, checksum string) (llb.GitOp, error) {
	op := llb.GitOp{Remote: g.remote, Ref: g.ref, Subdir: g.subdir}
	if keepGitDir != nil {
		op.KeepGitDir = *keepGitDir
	}
	if checksum != "" {
		if !commitPrefix.MatchString(checksum) {
			return op, fmt.Errorf("--checksum=%s: for a git source it is a commit hash", checksum)
		}
		op.Checksum = checksum
	}
	return op, nil
}
