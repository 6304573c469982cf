package source

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/bzip2"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/ulikunitz/xz"
)

// Compression names an archive's compression, recognised by its first bytes.
type Compression string

const (
	Uncompressed Compression = "tar"
	Gzip         Compression = "gzip"
	Bzip2        Compression = "bzip2"
	Xz           Compression = "xz"
	Zstd         Compression = "zstd"
)

// DetectCompression names the compression whose magic number starts head;
// anything else is Uncompressed.
func DetectCompression(head []byte) Compression {
	switch {
	case bytes.HasPrefix(head, []byte{0x1f, 0x8b}):
		return Gzip
	case bytes.HasPrefix(head, []byte("BZh")):
		return Bzip2
	case bytes.HasPrefix(head, []byte{0xfd, '7', 'z', 'X', 'Z', 0}):
		return Xz
	case bytes.HasPrefix(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return Zstd
	}
	return Uncompressed
}

// DecompressStream returns r decompressed according to its first bytes, and the
// compression found. An unrecognised stream is returned as it is.
func DecompressStream(r io.Reader) (io.ReadCloser, Compression, error) {
	br := bufio.NewReader(r)
	head, _ := br.Peek(6)
	kind := DetectCompression(head)
	switch kind {
	case Gzip:
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, kind, err
		}
		return zr, kind, nil
	case Bzip2:
		return io.NopCloser(bzip2.NewReader(br)), kind, nil
	case Xz:
		xr, err := xz.NewReader(br)
		if err != nil {
			return nil, kind, err
		}
		return io.NopCloser(xr), kind, nil
	case Zstd:
		zr, err := zstd.NewReader(br)
		if err != nil {
			return nil, kind, err
		}
		return zr.IOReadCloser(), kind, nil
	}
	return io.NopCloser(br), kind, nil
}

// Archive is an open tar archive, possibly compressed.
type Archive struct {
	*tar.Reader
	Compression Compression
	f           *os.File
	dec         io.ReadCloser
}

// Close closes the decompressor and the file.
func (a *Archive) Close() error {
	err := a.dec.Close()
	return errors.Join(err, a.f.Close())
}

// ErrNotArchive is returned by OpenArchive for a file that is not a tar
// stream once decompressed (a gzipped text file, say).
var ErrNotArchive = errors.New("not a tar archive")

// OpenArchive opens the tar archive at path, decompressing it as its first
// bytes say. As ADD decides, a file is an archive when the first header of
// its decompressed stream reads as tar: a file that only looks compressed,
// or an empty archive, gives ErrNotArchive. The returned Archive's Next
// gives that first header again.
func OpenArchive(path string) (*Archive, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	dec, kind, err := DecompressStream(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: %s: %v", ErrNotArchive, kind, err)
	}
	// Read the first block for the check, then replay it.
	first := make([]byte, 512)
	n, err := io.ReadFull(dec, first)
	if err != nil || !isTarHeader(first[:n]) {
		dec.Close()
		f.Close()
		return nil, ErrNotArchive
	}
	tr := tar.NewReader(io.MultiReader(bytes.NewReader(first), dec))
	return &Archive{Reader: tr, Compression: kind, f: f, dec: dec}, nil
}

// isTarHeader reports whether block is a tar header: its checksum field
// matches the sum of its bytes (unsigned, or signed as some old tars wrote).
func isTarHeader(block []byte) bool {
	if len(block) < 512 {
		return false
	}
	var unsigned, signed int64
	for i, b := range block[:512] {
		if i >= 148 && i < 156 {
			b = ' '
		}
		unsigned += int64(b)
		signed += int64(int8(b))
	}
	field := bytes.Trim(block[148:156], " \x00")
	if len(field) == 0 {
		return false
	}
	var want int64
	for _, c := range field {
		if c < '0' || c > '7' {
			return false
		}
		want = want*8 + int64(c-'0')
	}
	return want == unsigned || want == signed
}

// IsArchive reports whether the file at path is a tar archive ADD unpacks,
// and its compression.
func IsArchive(path string) (Compression, bool, error) {
	a, err := OpenArchive(path)
	if errors.Is(err, ErrNotArchive) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	kind := a.Compression
	return kind, true, a.Close()
}
