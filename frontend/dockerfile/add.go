package dockerfile

import (
	"errors"
	"fmt"
	"strings"

	"github.com/builder-dev/builder/frontend/dockerfile/internal/remote"
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
	remotes, local, err := addSources(cmd)
	if err != nil {
		return err
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
	for _, r := range remotes {
		if err := c.addRemote(st, cmd, r, unpackRemote); err != nil {
			return err
		}
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

// remoteSource is a source of ADD that is not in a context: a URL to
// download, or a git repository when git is set.
type remoteSource struct {
	src string
	git *remote.Git
}

// addSources sorts ADD's sources into remote and local ones, and checks
// --checksum against them as BuildKit does.
func addSources(cmd *instructions.AddCommand) (remotes []remoteSource, local []string, err error) {
	for _, src := range cmd.SourcePaths {
		g, isGit, err := remote.ParseGit(src)
		switch {
		case err != nil:
			return nil, nil, fmt.Errorf("%s: %w", src, err)
		case isGit:
			remotes = append(remotes, remoteSource{src: src, git: &g})
		case remote.IsHTTP(src):
			remotes = append(remotes, remoteSource{src: src})
		case strings.Contains(src, "://"):
			return nil, nil, fmt.Errorf("%s: unsupported URL scheme; ADD takes http://, https:// and git URLs", src)
		default:
			local = append(local, src)
		}
	}
	if cmd.Checksum != "" {
		if len(cmd.SourcePaths) != 1 {
			return nil, nil, errors.New("--checksum can't be specified for multiple sources")
		}
		if len(remotes) == 0 {
			return nil, nil, errors.New("--checksum requires HTTP(S) or Git sources")
		}
	}
	return remotes, local, nil
}

// addRemote adds one remote source of ADD to the stage: its source vertex
// and a copy op of its own (one layer per remote source).
func (c *converter) addRemote(st *stageState, cmd *instructions.AddCommand, r remoteSource, unpack bool) error {
	var srcVertex *llb.Vertex
	var from string
	meta := c.meta(st, "ADD "+r.src, cmd.Location())
	if r.git != nil {
		op, err := r.git.Op(cmd.KeepGitDir, cmd.Checksum)
		if err != nil {
			return fmt.Errorf("%s: %w", r.src, err)
		}
		srcVertex = llb.NewVertex(op, nil, meta)
		from = "/"
	} else {
		op := llb.HTTPOp{URL: r.src, Filename: remote.Filename(r.src)}
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
	dest := absPath(st.image.Config.WorkingDir, cmd.DestPath)
	cp := llb.CopyOp{Sources: []string{from}, Dest: dest, Chown: cmd.Chown, Chmod: cmd.Chmod, Link: cmd.Link}
	if r.git != nil {
		cp.Excludes = cmd.ExcludePatterns
	} else {
		// The copy op's Add unpacks an archive; downloads only on --unpack.
		cp.Add = unpack
	}
	st.vertex = llb.NewVertex(cp, []*llb.Vertex{st.vertex, srcVertex}, c.meta(st, fmt.Sprint(cmd), cmd.Location()))
	c.addHistory(st, copyHistory(copySpec{
		SourcesAndDest: instructions.SourcesAndDest{SourcePaths: []string{r.src}, DestPath: cmd.DestPath},
		name:           "ADD", chown: cmd.Chown, chmod: cmd.Chmod,
	}), false)
	return nil
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
