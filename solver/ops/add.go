package ops

import (
	"bytes"
	"errors"
	"os"
)

// archiveKind recognises the archives ADD unpacks, by their first bytes:
// "gzip", "bzip2", "xz", "zstd", "tar", or "" for anything else.
func archiveKind(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	head := make([]byte, 512)
	n, _ := f.ReadAt(head, 0)
	head = head[:n]
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return "gzip", nil
	case bytes.HasPrefix(head, []byte("BZh")):
		return "bzip2", nil
	case bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return "xz", nil
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return "zstd", nil
	case len(head) >= 262 && string(head[257:262]) == "ustar":
		return "tar", nil
	}
	return "", nil
}

// unpack extracts the archive at src (of the given kind) into the
// directory dest of the root.
func (c *copier) unpack(src, kind, dest string) error {
	return errors.New("ADD of a " + kind + " archive is not supported yet; use COPY to copy it as a file, or unpack it in a RUN step")
}
