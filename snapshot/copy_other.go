//go:build !linux

package snapshot

func (s *Snapshotter) prepareCopy(string, []string) error { return errUnsupported }

func (s *Snapshotter) commitCopy(string) error { return nil }

func (s *Snapshotter) ensureView([]string) (string, error) { return "", errUnsupported }

// CopyDir copies the directory tree src to dst; it needs Linux.
func CopyDir(dst, src string) error { return errUnsupported }
