package snapshot

import (
	"strings"
	"time"
)

// OCI layer whiteout names (image-spec layer.md).
const (
	whiteoutPrefix = ".wh."
	// whiteoutMeta prefixes AUFS metadata names, which are not files.
	whiteoutMeta = ".wh..wh."
	// whiteoutOpaque marks its directory opaque: lower layers' entries in
	// it are hidden.
	whiteoutOpaque = ".wh..wh..opq"
)

// Overlay's opaque-directory xattr, in the trusted namespace (root) and the
// user namespace (mounted with userxattr, rootless).
const (
	trustedOpaque = "trusted.overlay.opaque"
	userOpaque    = "user.overlay.opaque"
)

// paxXattr prefixes the PAX records that carry extended attributes.
const paxXattr = "SCHILY.xattr."

// isOverlayXattr reports whether name is overlay's own metadata, which is
// meaningful only to the kernel and must neither leave nor enter a layer.
func isOverlayXattr(name string) bool {
	return strings.HasPrefix(name, "trusted.overlay.") || strings.HasPrefix(name, "user.overlay.")
}

// DiffOptions configures WriteDiff.
type DiffOptions struct {
	// SourceDateEpoch, when set, clamps every modification time to at most
	// this time (SOURCE_DATE_EPOCH reproducible builds).
	SourceDateEpoch *time.Time
	// ZeroTimes writes every modification time as the Unix epoch, for a
	// digest of a layer's content that ignores when files were written.
	ZeroTimes bool
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
	// included) add up to more than MaxExpansionRatio times it (and
	// MinExpansionLimit), naming the layer as Name.
	CompressedSize int64
	Name           string
}

// ApplyResult describes what Apply wrote.
type ApplyResult struct {
	// Size is the number of bytes of regular file content, holes
	// included.
	Size int64
	// Written is the number of bytes of it actually written: blocks of
	// zeros become holes.
	Written int64
	// ImplicitDirs lists the directories (relative, sorted) Apply made
	// 0755 because entries below them came without them (tmp/x without
	// tmp/): see InheritDirs.
	ImplicitDirs []string
	// SkippedXattrs lists "path: name" for extended attributes the
	// filesystem refused (ENOTSUP or EPERM) and that were left out.
	SkippedXattrs []string
}
