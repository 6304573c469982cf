package blobstream

import (
	"fmt"
	"io"

	"github.com/klauspost/compress/zstd"
	"github.com/klauspost/pgzip"
)

// Decompress returns the tar stream of a layer blob compressed as
// compression says: "gzip", "zstd" or "none".
func Decompress(r io.Reader, compression string) (io.ReadCloser, error) {
	switch compression {
	case "gzip":
		// pgzip inflates ahead of the reader in a goroutine of its own,
		// so inflating a layer overlaps the extractor's file writes,
		// which take most of an unpack. Four blocks of 256 KiB keep that
		// overlap at a quarter of the memory of 1 MiB ones (the same CPU
		// time for the 498 MB layer of bench/peers' debian-dev; a pull
		// runs up to four layers at once).
		zr, err := pgzip.NewReaderN(r, 256<<10, 4)
		if err != nil {
			return nil, err
		}
		// Read only: pgzip v1.2.7's WriteTo panics after a Read has
		// consumed a block to its end (io.Copy would call it).
		return struct {
			io.Reader
			io.Closer
		}{zr, zr}, nil
	case "zstd":
		zr, err := zstd.NewReader(r)
		if err != nil {
			return nil, err
		}
		return zr.IOReadCloser(), nil
	case "none":
		return io.NopCloser(r), nil
	}
	return nil, fmt.Errorf("unsupported layer compression %q", compression)
}
