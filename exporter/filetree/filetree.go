// Package filetree writes the file tree of an image, its layers applied in
// order with their whiteouts: as one tar stream (`-o type=tar`) or into a
// directory (`-o type=local`).
package filetree

import (
	"archive/tar"
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"

	"github.com/builder-dev/builder/cache/content"
	"github.com/builder-dev/builder/exporter"
	"github.com/builder-dev/builder/snapshot"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// WriteTar writes the file tree of an image, its layers applied in
// order with their whiteouts, as one tar stream: what `docker buildx build
// -o type=tar` writes. Directories come first (sorted), then the other
// files layer by layer; owners, modes, times, links, devices and xattrs are
// kept; whiteouts are not written.
func WriteTar(ctx context.Context, w io.Writer, store *content.Store, manifest ocispec.Descriptor) error {
	raw, err := store.ReadAll(manifest.Digest)
	if err != nil {
		return err
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("manifest %s: %w", manifest.Digest, err)
	}
	tree, err := flatten(ctx, store, m.Layers)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	var dirs []string
	for p, e := range tree {
		if e.hdr.Typeflag == tar.TypeDir {
			dirs = append(dirs, p)
		}
	}
	slices.Sort(dirs)
	for _, p := range dirs {
		if err := tw.WriteHeader(rootfsHeader(p, tree[p].hdr)); err != nil {
			return err
		}
	}
	for i, l := range m.Layers {
		err := eachEntry(ctx, store, l, func(idx int, key string, hdr *tar.Header, r io.Reader) error {
			e, ok := tree[key]
			if !ok || e.layer != i || e.index != idx || hdr.Typeflag == tar.TypeDir {
				return nil
			}
			if hdr.Typeflag == tar.TypeLink {
				if _, ok := tree[cleanKey(hdr.Linkname)]; !ok {
					return nil // its target was removed by a later layer
				}
			}
			if err := tw.WriteHeader(rootfsHeader(key, hdr)); err != nil {
				return err
			}
			if hdr.Typeflag == tar.TypeReg && hdr.Size > 0 {
				if _, err := io.Copy(tw, r); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	return tw.Close()
}

// WriteDir writes the file tree of an image into dir (created if
// missing), with owners, modes, times and xattrs: what `docker buildx build
// -o type=local` writes. Files already in dir are replaced.
func WriteDir(ctx context.Context, dir string, store *content.Store, manifest ocispec.Descriptor) error {
	return WriteDirFrom(ctx, dir, func(w io.Writer) error { return WriteTar(ctx, w, store, manifest) })
}

// WriteDirFrom writes into dir, as WriteDir does, the tree tar that write
// writes (an image's, read on its way by the caller).
func WriteDirFrom(ctx context.Context, dir string, write func(io.Writer) error) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	pr, pw := io.Pipe()
	done := make(chan error, 1)
	go func() {
		err := write(pw)
		pw.CloseWithError(err)
		done <- err
	}()
	_, err := snapshot.Apply(ctx, dir, pr, snapshot.ApplyOptions{NoLchown: os.Geteuid() != 0})
	pr.CloseWithError(errors.New("apply stopped"))
	if werr := <-done; err == nil && werr != nil {
		err = werr
	}
	if err != nil {
		return fmt.Errorf("writing the file tree to %s: %w", dir, err)
	}
	return nil
}

// treeEntry is the entry of a path in the flattened tree: the layer and the
// position in it of the header that wins.
type treeEntry struct {
	layer, index int
	hdr          *tar.Header
}

// flatten applies the layers' headers in order, with OCI whiteouts, and
// returns what is left by path.
func flatten(ctx context.Context, store *content.Store, layers []ocispec.Descriptor) (map[string]treeEntry, error) {
	tree := map[string]treeEntry{}
	removeTree := func(p string) {
		delete(tree, p)
		for k := range tree {
			if p == "" || strings.HasPrefix(k, p+"/") {
				delete(tree, k)
			}
		}
	}
	for i, l := range layers {
		var added []treeEntry
		var keys []string
		err := eachEntry(ctx, store, l, func(idx int, key string, hdr *tar.Header, _ io.Reader) error {
			dir, base := path.Split(key)
			dir = strings.TrimSuffix(dir, "/")
			switch {
			case base == ".wh..wh..opq":
				for k := range tree {
					if dir == "" || strings.HasPrefix(k, dir+"/") {
						delete(tree, k)
					}
				}
			case strings.HasPrefix(base, ".wh."):
				removeTree(path.Join(dir, strings.TrimPrefix(base, ".wh.")))
			default:
				added = append(added, treeEntry{layer: i, index: idx, hdr: hdr})
				keys = append(keys, key)
			}
			return nil
		})
		if err != nil {
			return nil, err
		}
		for j, e := range added {
			k := keys[j]
			if old, ok := tree[k]; ok && old.layer != i && old.hdr.Typeflag == tar.TypeDir && e.hdr.Typeflag != tar.TypeDir {
				removeTree(k)
			}
			tree[k] = e
		}
	}
	return tree, nil
}

// eachEntry calls fn for every entry of a layer blob but the root, with
// its position and its name cleaned of "./", "/" and a trailing "/".
func eachEntry(ctx context.Context, store *content.Store, l ocispec.Descriptor, fn func(idx int, key string, hdr *tar.Header, r io.Reader) error) error {
	rc, err := store.Open(l.Digest)
	if err != nil {
		return err
	}
	defer rc.Close()
	zr, err := exporter.Decompress(bufio.NewReaderSize(rc, 1<<20), exporter.CompressionOf(l.MediaType))
	if err != nil {
		return fmt.Errorf("layer %s: %w", l.Digest, err)
	}
	defer zr.Close()
	tr := tar.NewReader(zr)
	for idx := 0; ; idx++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("layer %s: %w", l.Digest, err)
		}
		key := cleanKey(hdr.Name)
		if key == "" {
			continue
		}
		if err := fn(idx, key, hdr, tr); err != nil {
			return fmt.Errorf("layer %s: %s: %w", l.Digest, key, err)
		}
	}
}

func cleanKey(name string) string {
	p := path.Clean("/" + name)
	return strings.TrimPrefix(p, "/")
}

// rootfsHeader is hdr named key, with only what describes the file: no
// user or group names, no access or change times.
func rootfsHeader(key string, hdr *tar.Header) *tar.Header {
	h := &tar.Header{
		Name:     key,
		Typeflag: hdr.Typeflag,
		Mode:     hdr.Mode,
		Uid:      hdr.Uid,
		Gid:      hdr.Gid,
		Size:     hdr.Size,
		ModTime:  hdr.ModTime,
		Linkname: hdr.Linkname,
		Devmajor: hdr.Devmajor,
		Devminor: hdr.Devminor,
		Format:   tar.FormatPAX,
	}
	switch h.Typeflag {
	case tar.TypeDir:
		h.Name += "/"
	case tar.TypeLink:
		h.Linkname = cleanKey(hdr.Linkname)
	case tar.TypeRegA:
		h.Typeflag = tar.TypeReg
	}
	if h.Typeflag != tar.TypeReg {
		h.Size = 0
	}
	for k, v := range hdr.PAXRecords {
		if strings.HasPrefix(k, "SCHILY.xattr.") {
			if h.PAXRecords == nil {
				h.PAXRecords = map[string]string{}
			}
			h.PAXRecords[k] = v
		}
	}
	return h
}
