package filecopy

import (
	"context"
	"fmt"
	"os"

	"github.com/builder-dev/builder/internal/archive"
	"github.com/builder-dev/builder/source"
	securejoin "github.com/cyphar/filepath-securejoin"
)

// archiveKind tells whether the local file ADD copies is an archive to
// unpack, as BuildKit decides: it is one when its stream, decompressed as
// its first bytes say (gzip, bzip2, xz, zstd or none), starts with a tar
// header. It returns the compression ("gzip", "bzip2", "xz", "zstd",
// "tar"), or "" for a file to copy as it is, such as a gzipped text file.
func archiveKind(p string) (string, error) {
	kind, ok, err := source.IsArchive(p)
	if err != nil || !ok {
		return "", err
	}
	return string(kind), nil
}

// unpack extracts the archive at src (of the given kind) into the
// directory dest of the root, as `tar -x` would inside the root: existing
// directories are merged, other existing files replaced; modes, owners
// (unless --chown is given), times, symlinks, hard links and device nodes
// are kept, and --exclude applies to the archive's members. No entry can
// write outside dest: archive.Extract resolves every name and symlink with
// dest as the root, as BuildKit's chrooted untar does.
func (c *copier) unpack(src, kind, dest string) error {
	a, err := source.OpenArchive(src)
	if err != nil {
		return err
	}
	defer a.Close()
	// dest itself was made (or found) by the caller, resolved in the root.
	destHost, err := securejoin.SecureJoin(c.root, dest)
	if err != nil {
		return err
	}
	fi, err := os.Stat(src)
	if err != nil {
		return err
	}
	opts := archive.Options{
		Exclude:         c.excluded,
		KeepDestination: true,
		Expansion:       &archive.Expansion{Compressed: fi.Size(), What: "archive"},
	}
	if c.chown {
		opts.Owner = &archive.Owner{UID: c.uid, GID: c.gid}
	}
	ctx := c.ctx
	if ctx == nil {
		ctx = context.Background()
	}
	if _, err := archive.Extract(ctx, destHost, a.Reader, opts); err != nil {
		return fmt.Errorf("%s archive: %w", kind, err)
	}
	return nil
}
