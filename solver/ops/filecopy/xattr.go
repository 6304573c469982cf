package filecopy

import "strings"

// Which extended attributes a COPY carries over. BuildKit v0.34 (run, not
// read: rootful and rootless, see xattr_linux_test.go and the report of the
// change that added this file) copies every xattr of a file or directory
// it copies from another stage or image, so a capability set in a stage
// (setcap) survives COPY --from; the layers it writes keep only
// security.capability. From the build context its transfer drops
// security.capability and keeps the rest for later RUN steps, but never
// puts them in an image, and its cache key ignores them.
//
// Builder copies from a stage or an image the user.* xattrs (but overlay's
// own, user.overlay.*, which would change what an overlay mount shows in
// rootless mode) and security.capability of regular files. It copies none
// from the build context: what a desktop or a sync tool keeps in a
// checkout's xattrs (download URLs, sync state) stays out of the image and
// out of its digest, and the context's cache key needs no xattrs. trusted.*
// is never copied: it is the host's (overlay keeps its metadata there,
// BuildKit's RUN steps cannot see it and its layers never carry it); nor
// other security.* names (LSM labels such as security.selinux, IMA/EVM
// signatures), which belong to the host that set them.
type xattrKeep uint8

const (
	// keepXattrsNone copies no xattrs (the build context).
	keepXattrsNone xattrKeep = iota
	// keepXattrsStage copies user.* and security.capability (a stage or
	// an image).
	keepXattrsStage
)

// capabilityXattr holds a file's capabilities (setcap).
const capabilityXattr = "security.capability"

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
	if strings.HasPrefix(name, "user.") {
		return !strings.HasPrefix(name, "user.overlay.")
	}
	return reg && name == capabilityXattr
}
