// Package mountcache moves RUN --mount=type=cache directories between
// machines with the build cache (--cache-to ...,cache-mounts=true): it
// cuts a cache's files into content-addressed parts, one gzipped tar per
// directory group, and unpacks them, confined and checked, into an empty
// cache directory (docs/cache-format.md, "Cache mounts across machines").
package mountcache

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"slices"
	"time"

	"github.com/builder-dev/builder/cache/content"
	"github.com/docker/go-units"
	"github.com/klauspost/compress/gzip"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Mount is one RUN --mount=type=cache directory of a build
// (cache-mounts=true): Key is how the state directory names it (a hex
// digest of its id, and of its from= source if any), so the same RUN
// finds it on another machine.
type Mount struct {
	Key     string
	ID      string
	Sharing string
	// Dir is the cache's files on this machine.
	Dir string
	// Lock, when set, holds the cache against writers while it is read.
	Lock func(ctx context.Context) (unlock func(), err error)
}

// Entry is a cache mount in the cache config. Its files are cut into
// parts, each a gzipped tar named by its content, so that a re-export
// where a few files changed uploads only the parts that hold them (the
// others are in the registry already: one HEAD each).
type Entry struct {
	Key     string `json:"key"`
	ID      string `json:"id,omitempty"`
	Sharing string `json:"sharing,omitempty"`
	// Size is the tar bytes of all parts.
	Size  int64  `json:"size"`
	Parts []Part `json:"parts"`
}

// Part is one directory of a cache mount: with Tree all of it, else
// the directory itself and its entries that are not directories (each of
// its subdirectories has its own part, listed after it).
type Part struct {
	Path   string             `json:"path"`
	Tree   bool               `json:"tree,omitempty"`
	Blob   ocispec.Descriptor `json:"blob"`
	DiffID digest.Digest      `json:"diffID"`
	Size   int64              `json:"size"`
}

// partTarget is the size a directory may have and still be one part: big
// enough that a cache of small files is a handful of blobs, small enough
// that one changed file re-uploads little.
const partTarget = 4 << 20

// DefaultMaxSize is the largest cache mount exported unless
// cache-mounts-max-size says otherwise.
const DefaultMaxSize = 2 << 30

// Caps on what an imported config may ask of a restore.
const (
	MaxMounts  = 256
	MaxParts   = 1 << 16
	MaxRestore = 16 << 30
	keySize    = 64
)

// Export cuts m's files into parts and stores them in store, or returns nil
// (with a warning when it is too big) when there is nothing to export.
func Export(ctx context.Context, store *content.Store, m Mount, limit int64, warn func(string)) (*Entry, error) {
	if m.Lock != nil {
		unlock, err := m.Lock(ctx)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil // declared but never run here
		}
		if err != nil {
			return nil, err
		}
		defer unlock()
	}
	sizes, err := treeSizes(m.Dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil // declared but never run here
	}
	if err != nil {
		return nil, err
	}
	if sizes["."] > limit {
		warn(fmt.Sprintf("cache mount %s is %s, over cache-mounts-max-size=%s: not exported",
			m.ID, units.BytesSize(float64(sizes["."])), units.BytesSize(float64(limit))))
		return nil, nil
	}
	cm := &Entry{Key: m.Key, ID: m.ID, Sharing: m.Sharing, Parts: []Part{}}
	memo := loadMemo(m.Dir)
	next := map[string]memoEntry{}
	for _, p := range splitParts(sizes, ".") {
		fp, err := fingerprint(ctx, m.Dir, p)
		if err != nil {
			return nil, err
		}
		if old, ok := memo[p.memoKey()]; ok && old.Fingerprint == fp && store.Exists(old.Part.Blob.Digest) {
			p = old.Part
		} else if err := writePart(ctx, store, m.Dir, &p); err != nil {
			return nil, err
		}
		next[p.memoKey()] = memoEntry{Fingerprint: fp, Part: p}
		cm.Size += p.Size
		cm.Parts = append(cm.Parts, p)
	}
	if err := saveMemo(m.Dir, next); err != nil {
		warn(fmt.Sprintf("cache mount %s: remembering its parts: %v", m.ID, err))
	}
	return cm, nil
}

// treeSizes returns the bytes of regular files under each directory of
// dir (relative, slash-separated, "." for dir itself), subdirectories
// included.
func treeSizes(dir string) (map[string]int64, error) {
	sizes := map[string]int64{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		rel = filepath.ToSlash(rel)
		if d.IsDir() {
			sizes[rel] += 0
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		for a := path.Dir(rel); ; a = path.Dir(a) {
			sizes[a] += fi.Size()
			if a == "." {
				break
			}
		}
		return nil
	})
	return sizes, err
}

// splitParts returns the parts of directory rel, parents first: one part
// for the whole tree when it is small or has no subdirectory, else one
// for its own entries and the parts of each subdirectory.
func splitParts(sizes map[string]int64, rel string) []Part {
	var subs []string
	for p := range sizes {
		if p != "." && path.Dir(p) == rel {
			subs = append(subs, p)
		}
	}
	if sizes[rel] <= partTarget || len(subs) == 0 {
		return []Part{{Path: rel, Tree: true}}
	}
	slices.Sort(subs)
	parts := []Part{{Path: rel}}
	for _, s := range subs {
		parts = append(parts, splitParts(sizes, s)...)
	}
	return parts
}

// writePart writes part p of the cache mount in dir as a gzipped tar into
// the content store and fills in its blob. The tar depends only on the
// files (names in order, times to the second, no owner names), so
// unchanged files give the same blob.
func writePart(ctx context.Context, store *content.Store, dir string, p *Part) error {
	w, err := store.Writer(ctx)
	if err != nil {
		return err
	}
	defer w.Close()
	zw, err := gzip.NewWriterLevel(w, gzip.DefaultCompression)
	if err != nil {
		return err
	}
	dig := digest.SHA256.Digester()
	counter := &countWriter{w: io.MultiWriter(zw, dig.Hash())}
	tw := tar.NewWriter(counter)
	if err := walkPart(ctx, dir, p.Path, p.Tree, func(abs, name string) error { return tarEntry(tw, abs, name) }); err != nil {
		return fmt.Errorf("%s: %w", filepath.Join(dir, p.Path), err)
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	d, size, err := w.Commit("", -1)
	if err != nil {
		return err
	}
	p.Blob = ocispec.Descriptor{MediaType: ocispec.MediaTypeImageLayerGzip, Digest: d, Size: size}
	p.DiffID, p.Size = dig.Digest(), counter.n
	return nil
}

// walkPart calls fn for the entries of directory rel of root in the
// order its part holds them: the directory, then its entries that are not
// directories, then (with tree) its subdirectories' trees, by name.
func walkPart(ctx context.Context, root, rel string, tree bool, fn func(abs, name string) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	abs := filepath.Join(root, filepath.FromSlash(rel))
	if err := fn(abs, rel); err != nil {
		return err
	}
	entries, err := os.ReadDir(abs) // sorted by name
	if err != nil {
		return err
	}
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		if err := fn(filepath.Join(abs, e.Name()), path.Join(rel, e.Name())); err != nil {
			return err
		}
	}
	if !tree {
		return nil
	}
	for _, e := range entries {
		if e.IsDir() {
			if err := walkPart(ctx, root, path.Join(rel, e.Name()), true, fn); err != nil {
				return err
			}
		}
	}
	return nil
}

// tarEntry writes the file abs as name. Sockets, pipes and devices are
// left out: a cache holds files.
func tarEntry(tw *tar.Writer, abs, name string) error {
	fi, err := os.Lstat(abs)
	if err != nil {
		return err
	}
	link := ""
	switch {
	case fi.Mode()&fs.ModeSymlink != 0:
		if link, err = os.Readlink(abs); err != nil {
			return err
		}
	case !fi.Mode().IsRegular() && !fi.IsDir():
		return nil
	}
	hdr, err := tar.FileInfoHeader(fi, link)
	if err != nil {
		return err
	}
	hdr.Name = name
	if fi.IsDir() {
		hdr.Name += "/"
	}
	hdr.Uname, hdr.Gname = "", ""
	hdr.ModTime = fi.ModTime().Truncate(1e9)
	hdr.AccessTime, hdr.ChangeTime = time.Time{}, time.Time{}
	if err := tw.WriteHeader(hdr); err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return nil
	}
	f, err := os.Open(abs)
	if err != nil {
		return err
	}
	defer f.Close()
	// A file that changed size since Lstat fails the part rather than
	// writing a tar that lies about it.
	_, err = io.CopyN(tw, f, hdr.Size)
	return err
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}
