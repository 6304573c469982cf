package snapshot

import (
	"archive/tar"
	"context"
	"fmt"
	"io"

	"github.com/builder-dev/builder/internal/archive"
)

// DiffOptions configures WriteDiff.
type DiffOptions = archive.DiffOptions

// WriteDiff writes the overlay upper directory dir (a layer directory,
// FS(id)) to w as an uncompressed OCI layer tar: see archive.WriteDiff for
// the order, the whiteouts and the metadata it writes.
func WriteDiff(ctx context.Context, dir string, w io.Writer, opts DiffOptions) error {
	return archive.WriteDiff(ctx, dir, w, opts)
}

// ApplyOptions configures Apply.
type ApplyOptions struct {
	// UserXattr writes opaque directories as user.overlay.opaque (for
	// overlays mounted with userxattr) instead of trusted.overlay.opaque.
	UserXattr bool
	// NoLchown skips changing ownership; for tests as an ordinary user.
	NoLchown bool
	// CompressedSize is the size of the layer blob the tar comes from;
	// when set, Apply fails once the tar's files (holes of sparse files
	// included) add up to more than archive.MaxExpansionRatio times it
	// (and archive.MinExpansionLimit), naming the layer as Name.
	CompressedSize int64
	Name           string
}

// ApplyResult describes what Apply wrote; its ImplicitDirs are what
// InheritDirs takes.
type ApplyResult = archive.Result

// Apply reads the uncompressed OCI layer tar r and writes it into dir, a
// fresh snapshot layer directory, in overlay upper format: .wh.<name>
// becomes a 0/0 character device <name>, and .wh..wh..opq marks its
// directory opaque with the overlay xattr (user.overlay.opaque with
// opts.UserXattr, trusted.overlay.opaque otherwise). An entry for the root
// sets the layer root's metadata. Everything else, confinement to dir
// included, is archive.Extract's.
func Apply(ctx context.Context, dir string, r io.Reader, opts ApplyOptions) (ApplyResult, error) {
	what := opts.Name
	if what == "" {
		what = "layer"
	}
	res, err := archive.Extract(ctx, dir, tar.NewReader(r), archive.Options{
		Whiteouts: true,
		UserXattr: opts.UserXattr,
		NoLchown:  opts.NoLchown,
		Expansion: &archive.Expansion{Compressed: opts.CompressedSize, What: what},
	})
	if err != nil {
		return res, fmt.Errorf("applying layer to %s: %w", dir, err)
	}
	return res, nil
}
