package filecopy

import "strings"

// Which extended attributes a COPY carries over. What BuildKit v0.34.2
// does, seen by running it (rootful, and rootless under rootlesskit):
//   - COPY --from a stage or an image copies every xattr of the files and
//     directories below the source (user.*, security.* such as
//     security.capability, POSIX ACLs: system.posix_acl_access, and a
//     directory's system.posix_acl_default, which the files copied into
//     it do not inherit), also with --chown and --chmod; a new
//     destination directory gets none, an existing one keeps its own and
//     gains the source's. (Its unpacking drops an image's trusted.*.)
//   - From the build context its transfer drops security.capability and
//     keeps the others for later RUN steps (trusted.* too, on the host);
//     its cache key ignores them.
//   - The layers it writes record only security.capability (PAX
//     SCHILY.xattr.security.capability); -o type=local writes the others
//     but not the capability.
//
// Builder copies, from a stage or an image, user.* (but overlay's own
// user.overlay.*, which would make a directory opaque or redirected in a
// rootless overlay), POSIX ACLs (conformance case copy_from_xattrs) and
// the security.capability of regular files; its
// layers record only the capability, as BuildKit's (internal/archive
// WriteDiff). It copies none from the build context: what a
// desktop or a sync tool keeps in a checkout's xattrs (download URLs, sync
// state) stays out of the image and its digest, as it stays out of
// BuildKit's images, and the context's cache key needs no xattrs. trusted.*
// is never copied: it is the host's (overlay's metadata lives there;
// BuildKit's RUN steps cannot see it nor its layers carry it); nor are other
// security.* names (security.selinux, IMA/EVM signatures), which belong to
// the host that set them and which a rootless build cannot set.
type xattrKeep uint8

const (
	// keepXattrsNone copies no xattrs (the build context).
	keepXattrsNone xattrKeep = iota
	// keepXattrsStage copies user.*, POSIX ACLs and security.capability
	// (a stage or an image).
	keepXattrsStage
)

// capabilityXattr holds a file's capabilities (setcap).
const capabilityXattr = "security.capability"

// The POSIX ACLs of a file or directory (setfacl), and a directory's
// default ACL, which the files made in it inherit.
const (
	aclAccessXattr  = "system.posix_acl_access"
	aclDefaultXattr = "system.posix_acl_default"
)

// xattrsFor is what a copy keeps: fromStage is set for a source that is
// another stage or an image, not the build context.
func xattrsFor(fromStage bool) xattrKeep {
	if fromStage {
		return keepXattrsStage
	}
	return keepXattrsNone
}

// keeps reports whether the xattr name of a file (regular when reg) is
// copied.
func (k xattrKeep) keeps(name string, reg bool) bool {
	if k != keepXattrsStage {
		return false
	}
	switch {
	case strings.HasPrefix(name, "user."):
		return !strings.HasPrefix(name, "user.overlay.")
	case name == aclAccessXattr:
		return true
	case name == aclDefaultXattr:
		return !reg
	}
	return reg && name == capabilityXattr
}

// XattrsKeyParts are what the cache key of a copy adds for the xattrs it
// keeps (fromStage: from a stage or an image): a copy cached before they
// were kept, without them, must not be taken for one. (It costs one
// content key: one that finds the source without xattrs still finds the
// old copy.)
func XattrsKeyParts(fromStage bool) []string {
	if !fromStage {
		return nil
	}
	return []string{"xattrs:user.*,security.capability,system.posix_acl_*"}
}
