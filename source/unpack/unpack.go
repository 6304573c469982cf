// Package unpack writes a layer blob into a new snapshot: inflated as its
// media type says, applied (snapshot.Apply), its uncompressed digest
// checked against the image config's diff ID, and committed.
package unpack

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"strings"

	"github.com/builder-dev/builder/internal/blobstream"
	"github.com/builder-dev/builder/snapshot"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Layer unpacks layer desc from blob into the new snapshot id of snaps and
// commits it; it returns once blob ended (a download's end: the blob
// checked and stored) and the tar is diffID. It returns the directories the layer implied without
// listing them (snapshot.InheritDirs takes them).
func Layer(ctx context.Context, snaps snapshot.Snapshotter, id string, blob io.Reader, desc ocispec.Descriptor, diffID digest.Digest) ([]string, error) {
	// A download writes blobstream.CopyBuffer at a time: the inflater
	// takes as much in one read.
	raw := bufio.NewReaderSize(blob, blobstream.CopyBuffer)
	tarStream, err := blobstream.Decompress(raw, Compression(desc.MediaType))
	if err != nil {
		return nil, fmt.Errorf("layer %s: %w", desc.Digest, err)
	}
	defer tarStream.Close()
	if err := snaps.Prepare(id); err != nil {
		return nil, err
	}
	h := sha256.New()
	res, err := snapshot.Apply(ctx, snaps.FS(id), io.TeeReader(tarStream, h), snapshot.ApplyOptions{UserXattr: snaps.UserXattr(), CompressedSize: desc.Size, Name: "layer " + desc.Digest.String()})
	if err != nil {
		return nil, fmt.Errorf("unpacking layer %s: %w", desc.Digest, err)
	}
	// The tar has ended: commit now, so that its syncfs runs while a
	// download still fsyncs the blob. Nothing trusts the snapshot before
	// the checks below pass and the caller records it (on an error, the
	// caller removes it).
	if err := snaps.Commit(id); err != nil {
		return nil, err
	}
	// Drain what the tar reader left (padding), so the digest covers it
	// all, then the blob, so that a download has checked and stored it.
	if _, err := io.Copy(h, tarStream); err != nil {
		return nil, fmt.Errorf("layer %s: %w", desc.Digest, err)
	}
	if got := digest.Digest("sha256:" + hex.EncodeToString(h.Sum(nil))); got != diffID {
		return nil, fmt.Errorf("layer %s: uncompressed digest is %s, the image config says %s", desc.Digest, got, diffID)
	}
	if _, err := io.Copy(io.Discard, raw); err != nil {
		return nil, fmt.Errorf("layer %s: %w", desc.Digest, err)
	}
	return res.ImplicitDirs, nil
}

// Compression names a layer media type's compression: gzip, zstd, none.
func Compression(mediaType string) string {
	switch {
	case strings.HasSuffix(mediaType, "gzip"):
		return "gzip"
	case strings.HasSuffix(mediaType, "zstd"):
		return "zstd"
	case strings.HasSuffix(mediaType, ".tar"), strings.HasSuffix(mediaType, "tar.diff"):
		return "none"
	}
	return mediaType
}
