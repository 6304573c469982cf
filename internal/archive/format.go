// Package archive converts between tar streams and directory trees, the
// one place that reads a tar into a directory: it unpacks image layers
// (OCI whiteouts become overlay whiteouts and opaque markers) and the local
// archives ADD unpacks (plain tar semantics, optional owner and excludes),
// always confined to the destination directory; and it writes an overlay
// upper directory back out as an OCI layer tar (WriteDiff). It also bounds
// what an archive may expand to (Expansion) and writes files sparsely
// (fdfile.WriteSparse).
//
// The on-disk format it reads and writes is overlayfs's "upper" format:
// whiteouts are 0/0 character devices, opaque directories carry the
// <ns>.overlay.opaque=y xattr (ns is trusted, or user for overlays mounted
// with userxattr).
package archive

import (
	"strings"
	"time"
)

// OCI layer whiteout names (image-spec layer.md).
const (
	WhiteoutPrefix = ".wh."
	// WhiteoutMeta prefixes AUFS metadata names, which are not files.
	WhiteoutMeta = ".wh..wh."
	// WhiteoutOpaque marks its directory opaque: lower layers' entries in
	// it are hidden.
	WhiteoutOpaque = ".wh..wh..opq"
)

// Overlay's opaque-directory xattr, in the trusted namespace (root) and the
// user namespace (mounted with userxattr, rootless).
const (
	TrustedOpaque = "trusted.overlay.opaque"
	UserOpaque    = "user.overlay.opaque"
)

// OpaqueXattr is the name of the opaque-directory xattr for the trusted
// namespace, or the user namespace when user is set.
func OpaqueXattr(user bool) string {
	if user {
		return UserOpaque
	}
	return TrustedOpaque
}

// CapabilityXattr holds a file's capabilities (setcap): the one xattr a
// layer written by WriteDiff records.
const CapabilityXattr = "security.capability"

// PAXXattr prefixes the PAX records that carry extended attributes.
const PAXXattr = "SCHILY.xattr."

// IsOverlayXattr reports whether name is overlay's own metadata, which is
// meaningful only to the kernel and must neither leave nor enter a layer.
func IsOverlayXattr(name string) bool {
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

// Owner is a fixed owner for what Extract writes.
type Owner struct{ UID, GID int }

// Options configures Extract. The zero value unpacks a plain tar, keeping
// the archive's owners.
type Options struct {
	// Whiteouts reads the archive as an OCI layer: .wh.<name> becomes a
	// 0/0 character device <name> and .wh..wh..opq marks its directory
	// opaque (AUFS .wh..wh.* metadata is dropped). Without it, such names
	// are ordinary files.
	Whiteouts bool
	// UserXattr writes opaque directories as user.overlay.opaque (for
	// overlays mounted with userxattr) instead of trusted.overlay.opaque.
	UserXattr bool
	// Owner, when set, owns every entry and every missing parent Extract
	// makes, instead of the archive's owners (ADD --chown).
	Owner *Owner
	// NoLchown skips changing ownership; for tests as an ordinary user.
	NoLchown bool
	// Exclude, when set, leaves out the entries whose clean relative name
	// it matches (ADD --exclude).
	Exclude func(rel string) bool
	// KeepDestination leaves the destination directory's own metadata
	// alone: an entry for "./" is skipped (ADD, whose destination belongs
	// to the image). Without it, such an entry sets the destination's
	// owner, mode and times (a layer's root).
	KeepDestination bool
	// Expansion, when set, bounds what the archive's files add up to.
	Expansion *Expansion
}

// Result describes what Extract wrote.
type Result struct {
	// Size is the number of bytes of regular file content, holes
	// included.
	Size int64
	// Written is the number of bytes of it actually written: blocks of
	// zeros become holes.
	Written int64
	// ImplicitDirs lists the directories (relative, sorted) Extract made
	// 0755 because entries below them came without them (tmp/x without
	// tmp/).
	ImplicitDirs []string
	// SkippedXattrs lists "path: name" for extended attributes the
	// filesystem refused (ENOTSUP or EPERM) and that were left out.
	SkippedXattrs []string
}
