//go:build !linux

package snapshot

// InheritDirs needs Linux, as Apply does.
func InheritDirs(string, []string, []string) error { return errUnsupported }
