package exporter

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/builder-dev/builder/cache"
	"github.com/builder-dev/builder/internal/blobstream"
	"github.com/builder-dev/builder/snapshot"
	"github.com/docker/go-units"
	kgzip "github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Layer compressions: the keys of a snapshot record's Blobs map (followed
// by "-LEVEL" for a level other than the default and "@EPOCH" for a layer
// whose times were clamped to SOURCE_DATE_EPOCH).
const (
	Gzip         = "gzip"
	Zstd         = "zstd"
	Uncompressed = "none"
)

// Docker image manifest v2 schema 2 media types.
const (
	DockerManifest     = "application/vnd.docker.distribution.manifest.v2+json"
	DockerConfig       = "application/vnd.docker.container.image.v1+json"
	DockerLayerGzip    = "application/vnd.docker.image.rootfs.diff.tar.gzip"
	DockerLayer        = "application/vnd.docker.image.rootfs.diff.tar"
	DockerManifestList = "application/vnd.docker.distribution.manifest.list.v2+json"
)

// annotationDiffID is kept on the descriptors of a snapshot record's Blobs:
// the digest of the layer tar the blob compresses. It never reaches a
// manifest.
const annotationDiffID = "dev.builder.diffid"

// Options say how an image's layers and manifest are written.
type Options struct {
	// Compression is Gzip (when empty), Zstd or Uncompressed.
	Compression string
	// Level is the compression level (gzip 1-9, zstd 1-22); 0 is the
	// compressor's default.
	Level int
	// ForceCompression recompresses base-image layers too. Without it a
	// layer of a base image is exported as it was pulled; layers the build
	// made always get Compression.
	ForceCompression bool
	// DockerMediaTypes writes Docker v2 schema 2 media types instead of OCI
	// ones.
	DockerMediaTypes bool
	// SourceDateEpoch, when set, clamps the file times of the layers the
	// build made (base-image layers are left as they are).
	SourceDateEpoch *time.Time
	// InlineCache, when set, is JSON put in the image config's
	// InlineCacheField: the build cache of the image's own layers.
	InlineCache string
	// SquashAbove, when positive, merges the oldest layers of an image
	// with more than SquashAbove layers into one, so that it has
	// SquashAbove; the file tree stays the same.
	SquashAbove int
	// MaxLayers is the most layers an image may have (after SquashAbove):
	// 0 means DefaultMaxLayers, negative no limit.
	MaxLayers int
}

// InlineCacheField is the image config field that holds an inline cache.
const InlineCacheField = "dev.builder.cache.v1"

// ParseCompression accepts the names of `docker buildx build -o
// compression=`: gzip, zstd, uncompressed.
func ParseCompression(s string) (string, error) {
	switch s {
	case "", "gzip":
		return Gzip, nil
	case "zstd":
		return Zstd, nil
	case "uncompressed", "none":
		return Uncompressed, nil
	}
	return "", fmt.Errorf("unknown compression %q (want gzip, zstd or uncompressed)", s)
}

func (o Options) compression() string {
	if o.Compression == "" {
		return Gzip
	}
	return o.Compression
}

func (o Options) check() error {
	c := o.compression()
	switch c {
	case Gzip:
		if o.Level < 0 || o.Level > 9 {
			return fmt.Errorf("compression-level=%d: gzip levels are 1 to 9", o.Level)
		}
	case Zstd:
		if o.DockerMediaTypes {
			return errors.New("compression=zstd needs OCI media types (oci-mediatypes=true): Docker's image format has no zstd layers")
		}
		if o.Level < 0 || o.Level > 22 {
			return fmt.Errorf("compression-level=%d: zstd levels are 1 to 22", o.Level)
		}
	case Uncompressed:
	default:
		return fmt.Errorf("unknown compression %q", c)
	}
	return nil
}

// memoKey names a blob of a snapshot in its record's Blobs map.
func memoKey(compression string, level int, epoch *time.Time) string {
	k := compression
	if level != 0 && compression != Uncompressed {
		k += "-" + strconv.Itoa(level)
	}
	if epoch != nil {
		k += "@" + strconv.FormatInt(epoch.Unix(), 10)
	}
	return k
}

// splitKey returns a memo key's compression and its "@EPOCH" suffix ("" if
// none).
func splitKey(key string) (compression, epoch string) {
	key, epoch, _ = strings.Cut(key, "@")
	compression, _, _ = strings.Cut(key, "-")
	return compression, epoch
}

func epochSuffix(epoch *time.Time) string {
	if epoch == nil {
		return ""
	}
	return strconv.FormatInt(epoch.Unix(), 10)
}

// LayerMediaType is the media type of a layer blob of the given compression.
func LayerMediaType(compression string, docker bool) (string, error) {
	switch {
	case compression == Gzip && docker:
		return DockerLayerGzip, nil
	case compression == Gzip:
		return ocispec.MediaTypeImageLayerGzip, nil
	case compression == Uncompressed && docker:
		return DockerLayer, nil
	case compression == Uncompressed:
		return ocispec.MediaTypeImageLayer, nil
	case compression == Zstd && !docker:
		return ocispec.MediaTypeImageLayerZstd, nil
	}
	return "", fmt.Errorf("no media type for %s layers (docker media types: %v)", compression, docker)
}

// CompressionOf names the compression of a layer media type.
func CompressionOf(mediaType string) string {
	switch {
	case strings.HasSuffix(mediaType, "gzip"):
		return Gzip
	case strings.HasSuffix(mediaType, "zstd"):
		return Zstd
	case strings.HasSuffix(mediaType, ".tar"), strings.HasSuffix(mediaType, "tar.diff"):
		return Uncompressed
	}
	return mediaType
}

// Decompress returns the tar stream of a blob of the given compression.
func Decompress(r io.Reader, compression string) (io.ReadCloser, error) {
	return blobstream.Decompress(r, compression)
}

// compressor wraps w in a writer of the given compression; Close flushes it
// (and leaves w open).
func compressor(w io.Writer, compression string, level int) (io.WriteCloser, error) {
	switch compression {
	case Gzip:
		if level == 0 {
			level = kgzip.DefaultCompression
		}
		if level < kgzip.HuffmanOnly || level > kgzip.BestCompression {
			return nil, fmt.Errorf("gzip level %d: levels are 1 to 9", level)
		}
		// The gzip header carries no name and no time: same tar, same blob.
		return newAdaptiveGzip(w, level, parallelBlocks())
	case Zstd:
		opts := []zstd.EOption{zstd.WithEncoderConcurrency(1)}
		if level != 0 {
			opts = append(opts, zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(level)))
		}
		return zstd.NewWriter(w, opts...)
	case Uncompressed:
		return nopWriteCloser{w}, nil
	}
	return nil, fmt.Errorf("unsupported layer compression %q", compression)
}

type nopWriteCloser struct{ io.Writer }

func (nopWriteCloser) Close() error { return nil }

// blobDiffID is the uncompressed digest of the blob remembered under key.
func blobDiffID(s cache.Snapshot, key string, d ocispec.Descriptor) digest.Digest {
	if v := d.Annotations[annotationDiffID]; v != "" {
		return digest.Digest(v)
	}
	if c, epoch := splitKey(key); epoch == "" {
		if c == Uncompressed {
			return d.Digest
		}
		return s.DiffID
	}
	return ""
}

// layerWith returns the blob of snapshot s written as o says, making it the
// first time. base marks a layer of a base image, which keeps its times and,
// unless o.ForceCompression, the compression it has.
func (e *Exporter) layerWith(ctx context.Context, f *flush, s cache.Snapshot, base bool, o Options) (ocispec.Descriptor, digest.Digest, error) {
	epoch := o.SourceDateEpoch
	if base {
		epoch = nil
	}
	want := o.compression()
	key := memoKey(want, o.Level, epoch)
	same := e.sameTar(s, epoch)
	// The requested form first, then (for a base layer kept as it is) the
	// same compression at another level, then any other.
	rank := func(k string) int {
		switch c, _ := splitKey(k); {
		case k == key:
			return 0
		case c == want:
			return 1
		}
		return 2
	}
	slices.SortFunc(same, func(a, b string) int {
		if r := rank(a) - rank(b); r != 0 {
			return r
		}
		return strings.Compare(a, b)
	})
	for _, k := range same {
		c, _ := splitKey(k)
		if k != key && !(base && !o.ForceCompression) {
			break
		}
		mt, err := LayerMediaType(c, o.DockerMediaTypes)
		if err != nil {
			continue // zstd kept as is cannot go into a Docker manifest
		}
		d := s.Blobs[k]
		return ocispec.Descriptor{MediaType: mt, Digest: d.Digest, Size: d.Size}, blobDiffID(s, k, d), nil
	}
	return e.makeLayer(ctx, f, s, same, key, epoch, o)
}

// sameTar lists the keys of the blobs of s that hold the tar epoch gives
// (the same file times) and are in the content store.
func (e *Exporter) sameTar(s cache.Snapshot, epoch *time.Time) []string {
	var same []string
	for k, d := range s.Blobs {
		if strings.HasPrefix(k, squashKeyPrefix) {
			continue // the merge of this and older layers, not this one's
		}
		if _, ep := splitKey(k); ep == epochSuffix(epoch) && blobDiffID(s, k, d) != "" && e.Content.Exists(d.Digest) {
			same = append(same, k)
		}
	}
	return same
}

// makeLayer makes the blob of s under key: from another compression of the
// same tar (the blobs same names) if there is one, so that every
// compression has the same diff_id, else from the layer directory. The
// blob and its memo in the snapshot's record go to f.
func (e *Exporter) makeLayer(ctx context.Context, f *flush, s cache.Snapshot, same []string, key string, epoch *time.Time, o Options) (ocispec.Descriptor, digest.Digest, error) {
	// Convert from the uncompressed blob if there is one.
	slices.SortStableFunc(same, func(a, b string) int {
		ua, _ := splitKey(a)
		ub, _ := splitKey(b)
		switch {
		case ua == Uncompressed && ub != Uncompressed:
			return -1
		case ub == Uncompressed && ua != Uncompressed:
			return 1
		}
		return 0
	})
	want := o.compression()
	start := time.Now()
	var expect digest.Digest
	fill := func(dst io.Writer) error {
		return snapshot.WriteDiff(ctx, e.Snapshots.FS(s.ID), dst, snapshot.DiffOptions{SourceDateEpoch: epoch})
	}
	doing := "writing"
	if len(same) > 0 {
		src := s.Blobs[same[0]]
		expect = blobDiffID(s, same[0], src)
		c, _ := splitKey(same[0])
		fill = func(dst io.Writer) error { return e.copyUncompressed(dst, src.Digest, c) }
		doing = "recompressing"
	}
	check := func(diffID digest.Digest) error {
		if expect != "" && diffID != expect {
			return fmt.Errorf("decompressed to %s, want %s", diffID, expect)
		}
		return nil
	}
	dgst, size, diffID, tarSize, err := e.writeLayer(ctx, f, want, o.Level, fill, check)
	if err != nil {
		return ocispec.Descriptor{}, "", fmt.Errorf("%s layer of %s: %w", doing, s.Description, err)
	}
	if e.Log != nil {
		took := time.Since(start).Seconds()
		fmt.Fprintf(e.Log, "layer %s: %s compressed (%s) to %s in %.2fs (%s/s)\n", diffID.Encoded()[:12],
			units.HumanSize(float64(tarSize)), want, units.HumanSize(float64(size)), took, units.HumanSize(float64(tarSize)/max(took, 1e-3)))
	}
	mt, err := LayerMediaType(want, o.DockerMediaTypes)
	if err != nil {
		return ocispec.Descriptor{}, "", err
	}
	memo := ocispec.Descriptor{MediaType: mt, Digest: dgst, Size: size, Annotations: map[string]string{annotationDiffID: diffID.String()}}
	f.remember(s.ID, key, memo, diffID, epoch == nil)
	return ocispec.Descriptor{MediaType: mt, Digest: dgst, Size: size}, diffID, nil
}

// writeLayer makes a blob of f's batch from the layer tar that fill
// writes, compressed as compression says. check, when set, sees the
// tar's diff_id before the blob is committed, and may refuse it. It
// returns the blob's digest and size, the diff_id and the tar's size.
func (e *Exporter) writeLayer(ctx context.Context, f *flush, compression string, level int, fill func(io.Writer) error, check func(digest.Digest) error) (dgst digest.Digest, size int64, diffID digest.Digest, tarSize int64, err error) {
	w, err := e.Content.Writer(ctx)
	if err != nil {
		return "", 0, "", 0, err
	}
	defer w.Close()
	zw, err := compressor(w, compression, level)
	if err != nil {
		return "", 0, "", 0, err
	}
	h := sha256.New()
	var counted countingWriter
	if err := fill(io.MultiWriter(zw, h, &counted)); err != nil {
		// Closed all the same: pgzip's goroutines and buffers live until
		// then. The blob is not committed.
		zw.Close()
		return "", 0, "", 0, err
	}
	if err := zw.Close(); err != nil {
		return "", 0, "", 0, err
	}
	diffID = digest.Digest("sha256:" + hex.EncodeToString(h.Sum(nil)))
	if check != nil {
		if err := check(diffID); err != nil {
			return "", 0, "", 0, err
		}
	}
	dgst, size, err = w.CommitTo(f.blobs, "", -1)
	return dgst, size, diffID, counted.n, err
}

// copyUncompressed writes the tar stream of blob d to w.
func (e *Exporter) copyUncompressed(w io.Writer, d digest.Digest, compression string) error {
	rc, err := e.Content.Open(d)
	if err != nil {
		return err
	}
	defer rc.Close()
	zr, err := Decompress(bufio.NewReaderSize(rc, 1<<20), compression)
	if err != nil {
		return err
	}
	defer zr.Close()
	_, err = io.Copy(w, zr)
	return err
}

// countingWriter counts the bytes written through it.
type countingWriter struct{ n int64 }

func (c *countingWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return len(p), nil
}
