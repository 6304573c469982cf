// Package treecopy is the engine of the copy snapshotter, for hosts where
// overlayfs cannot be mounted: it merges layer directories (overlay upper
// format, top-most first) into one plain directory tree (Merge), copies a
// tree keeping owners, modes, times, xattrs, devices and hard links (Dir),
// and writes the difference between two trees as a layer directory in
// overlay upper format (Diff), which is what overlay itself would have left
// in its upper directory.
package treecopy
