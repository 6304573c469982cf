//go:build !linux

package snapshot

func (s *copySnapshotter) prepareCopy(string, []string) error { return errUnsupported }

func (s *copySnapshotter) commitCopy(string) error { return errUnsupported }

func (s *copySnapshotter) ensureView([]string) (string, error) { return "", errUnsupported }
