// Package archive writes images of the content store as archives: a
// docker save tar, or an OCI image layout as a tar or a directory.
package archive

import (
	"archive/tar"
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"strings"

	"github.com/builder-dev/builder/cache/content"
	"github.com/builder-dev/builder/exporter"
	"github.com/google/go-containerregistry/pkg/name"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Image is one image of an archive (docker save tar or OCI layout):
// a manifest in the content store and the names to give it.
type Image struct {
	Manifest ocispec.Descriptor
	Names    []string
}

// Sink receives the files of an archive: a tar stream or a directory.
type Sink interface {
	// File adds a file of size bytes read from r.
	File(path string, size int64, r io.Reader) error
	// Close finishes the archive.
	Close() error
}

// TarSink returns a Sink writing a tar stream to w. Headers carry no
// times, owners or names, so the same files give the same bytes.
func TarSink(w io.Writer) Sink { return &tarSink{tw: tar.NewWriter(w), dirs: map[string]bool{}} }

type tarSink struct {
	tw   *tar.Writer
	dirs map[string]bool
}

func (t *tarSink) File(p string, size int64, r io.Reader) error {
	// Parent directories first, once each, as `docker save` writes them.
	if dir := filepath.Dir(p); dir != "." && !t.dirs[dir] {
		var parts []string
		for d := dir; d != "." && !t.dirs[d]; d = filepath.Dir(d) {
			parts = append(parts, d)
		}
		for i := len(parts) - 1; i >= 0; i-- {
			t.dirs[parts[i]] = true
			if err := t.tw.WriteHeader(&tar.Header{Name: parts[i] + "/", Mode: 0o755, Typeflag: tar.TypeDir, Format: tar.FormatPAX}); err != nil {
				return err
			}
		}
	}
	if err := t.tw.WriteHeader(&tar.Header{Name: p, Mode: 0o644, Size: size, Typeflag: tar.TypeReg, Format: tar.FormatPAX}); err != nil {
		return err
	}
	n, err := io.Copy(t.tw, r)
	if err == nil && n != size {
		err = fmt.Errorf("%s: got %d bytes, want %d", p, n, size)
	}
	return err
}

func (t *tarSink) Close() error { return t.tw.Close() }

// DirSink returns a Sink writing the files under dir.
func DirSink(dir string) Sink { return dirSink(dir) }

type dirSink string

func (d dirSink) File(p string, size int64, r io.Reader) error {
	full := filepath.Join(string(d), filepath.FromSlash(p))
	if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
		return err
	}
	tmp := full + ".tmp"
	f, err := os.Create(tmp)
	if err != nil {
		return err
	}
	n, err := io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && n != size {
		err = fmt.Errorf("%s: got %d bytes, want %d", p, n, size)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return os.Rename(tmp, full)
}

func (d dirSink) Close() error { return nil }

func addBytes(s Sink, p string, b []byte) error {
	return s.File(p, int64(len(b)), strings.NewReader(string(b)))
}

// readManifest reads a manifest from the store.
func readManifest(store *content.Store, desc ocispec.Descriptor) (ocispec.Manifest, error) {
	var m ocispec.Manifest
	raw, err := store.ReadAll(desc.Digest)
	if err != nil {
		return m, err
	}
	if err := json.Unmarshal(raw, &m); err != nil {
		return m, fmt.Errorf("manifest %s: %w", desc.Digest, err)
	}
	return m, nil
}

// readImage reads a manifest and its config from the store.
func readImage(store *content.Store, desc ocispec.Descriptor) (ocispec.Manifest, []byte, ocispec.Image, error) {
	var cfg ocispec.Image
	m, err := readManifest(store, desc)
	if err != nil {
		return m, nil, cfg, err
	}
	rawConfig, err := store.ReadAll(m.Config.Digest)
	if err != nil {
		return m, nil, cfg, err
	}
	if err := json.Unmarshal(rawConfig, &cfg); err != nil {
		return m, nil, cfg, fmt.Errorf("config %s: %w", m.Config.Digest, err)
	}
	if len(cfg.RootFS.DiffIDs) != len(m.Layers) {
		return m, nil, cfg, fmt.Errorf("image %s: %d layers but %d diff_ids", desc.Digest, len(m.Layers), len(cfg.RootFS.DiffIDs))
	}
	return m, rawConfig, cfg, nil
}

// dockerManifestEntry is one image of a docker save tar's manifest.json.
type dockerManifestEntry struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// WriteDocker writes images in the format of `docker save`, which
// `docker load` and `podman load` read: manifest.json, repositories, each
// config as blobs/sha256/<digest> and each layer as an uncompressed tar
// blobs/sha256/<diff_id>.
func WriteDocker(s Sink, store *content.Store, images []Image) error {
	var entries []dockerManifestEntry
	repos := map[string]map[string]string{}
	written := map[string]bool{}
	for _, img := range images {
		m, rawConfig, cfg, err := readImage(store, img.Manifest)
		if err != nil {
			return err
		}
		e := dockerManifestEntry{Config: "blobs/sha256/" + m.Config.Digest.Encoded(), RepoTags: []string{}}
		if !written[e.Config] {
			written[e.Config] = true
			if err := addBytes(s, e.Config, rawConfig); err != nil {
				return err
			}
		}
		for i, l := range m.Layers {
			diffID := cfg.RootFS.DiffIDs[i]
			p := "blobs/sha256/" + diffID.Encoded()
			e.Layers = append(e.Layers, p)
			if written[p] {
				continue
			}
			written[p] = true
			if err := writeUncompressed(s, store, p, l, diffID); err != nil {
				return err
			}
		}
		for _, n := range img.Names {
			tag, err := name.NewTag(n, name.WeakValidation)
			if err != nil {
				continue // a name by digest has no tag to give
			}
			e.RepoTags = append(e.RepoTags, n)
			repo := strings.TrimSuffix(n, ":"+tag.TagStr())
			if repos[repo] == nil {
				repos[repo] = map[string]string{}
			}
			if len(cfg.RootFS.DiffIDs) > 0 {
				repos[repo][tag.TagStr()] = cfg.RootFS.DiffIDs[len(cfg.RootFS.DiffIDs)-1].Encoded()
			}
		}
		entries = append(entries, e)
	}
	rawManifest, err := json.Marshal(entries)
	if err != nil {
		return err
	}
	if err := addBytes(s, "manifest.json", rawManifest); err != nil {
		return err
	}
	rawRepos, err := json.Marshal(repos)
	if err != nil {
		return err
	}
	if err := addBytes(s, "repositories", rawRepos); err != nil {
		return err
	}
	return s.Close()
}

// writeUncompressed adds layer l as the uncompressed tar p, checking that
// it is diffID. A compressed layer is read twice: for its size, then to
// write it.
func writeUncompressed(s Sink, store *content.Store, p string, l ocispec.Descriptor, diffID digest.Digest) error {
	c := exporter.CompressionOf(l.MediaType)
	open := func() (io.ReadCloser, func(), error) {
		rc, err := store.Open(l.Digest)
		if err != nil {
			return nil, nil, err
		}
		zr, err := exporter.Decompress(bufio.NewReaderSize(rc, 1<<20), c)
		if err != nil {
			rc.Close()
			return nil, nil, fmt.Errorf("layer %s: %w", l.Digest, err)
		}
		return zr, func() { zr.Close(); rc.Close() }, nil
	}
	size := l.Size
	if c != exporter.Uncompressed {
		r, done, err := open()
		if err != nil {
			return err
		}
		h := sha256.New()
		size, err = io.Copy(h, r)
		done()
		if err != nil {
			return fmt.Errorf("layer %s: %w", l.Digest, err)
		}
		if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != diffID.String() {
			return fmt.Errorf("layer %s: uncompressed digest is %s, the config says %s", l.Digest, got, diffID)
		}
	}
	r, done, err := open()
	if err != nil {
		return err
	}
	defer done()
	if err := s.File(p, size, r); err != nil {
		return fmt.Errorf("writing layer %s: %w", l.Digest, err)
	}
	return nil
}

// WriteOCI writes images as an OCI image layout (the format of
// `docker buildx build -o type=oci`): every blob, and an index.json with
// one entry per name (one without annotations for an image without names).
func WriteOCI(s Sink, store *content.Store, images []Image) error {
	idx := ocispec.Index{MediaType: ocispec.MediaTypeImageIndex, Manifests: []ocispec.Descriptor{}}
	idx.SchemaVersion = 2
	written := map[digest.Digest]bool{}
	blob := func(d ocispec.Descriptor) error {
		if written[d.Digest] {
			return nil
		}
		written[d.Digest] = true
		rc, err := store.Open(d.Digest)
		if err != nil {
			return err
		}
		defer rc.Close()
		if err := s.File("blobs/sha256/"+d.Digest.Encoded(), d.Size, rc); err != nil {
			return fmt.Errorf("writing blob %s: %w", d.Digest, err)
		}
		return nil
	}
	for _, img := range images {
		manifests := []ocispec.Descriptor{img.Manifest}
		if isIndex(img.Manifest.MediaType) {
			// A multi-platform image: its platforms' images, then the index.
			var idx ocispec.Index
			raw, err := store.ReadAll(img.Manifest.Digest)
			if err == nil {
				err = json.Unmarshal(raw, &idx)
			}
			if err != nil {
				return fmt.Errorf("index %s: %w", img.Manifest.Digest, err)
			}
			manifests = append(idx.Manifests, img.Manifest)
		}
		for _, md := range manifests {
			if !isIndex(md.MediaType) {
				// Not readImage: an index's attestation manifests have an
				// empty config, no image config with diff_ids.
				m, err := readManifest(store, md)
				if err != nil {
					return err
				}
				for _, d := range append([]ocispec.Descriptor{m.Config}, m.Layers...) {
					if err := blob(d); err != nil {
						return err
					}
				}
			}
			if err := blob(md); err != nil {
				return err
			}
		}
		desc := ocispec.Descriptor{MediaType: img.Manifest.MediaType, Digest: img.Manifest.Digest, Size: img.Manifest.Size, Annotations: img.Manifest.Annotations}
		if len(img.Names) == 0 {
			idx.Manifests = append(idx.Manifests, desc)
		}
		for _, n := range img.Names {
			d := desc
			d.Annotations = maps.Clone(desc.Annotations)
			if d.Annotations == nil {
				d.Annotations = map[string]string{}
			}
			d.Annotations["io.containerd.image.name"] = n
			d.Annotations[ocispec.AnnotationRefName] = refName(n)
			idx.Manifests = append(idx.Manifests, d)
		}
	}
	rawIndex, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	if err := addBytes(s, ocispec.ImageLayoutFile, []byte(`{"imageLayoutVersion":"1.0.0"}`)); err != nil {
		return err
	}
	if err := addBytes(s, "index.json", rawIndex); err != nil {
		return err
	}
	return s.Close()
}

// refName is the tag part of a name, as OCI layouts name their images.
func refName(n string) string {
	if r, err := name.ParseReference(n, name.WeakValidation); err == nil {
		if t, ok := r.(name.Tag); ok {
			return t.TagStr()
		}
	}
	if i := strings.LastIndex(n, ":"); i > strings.LastIndex(n, "/") {
		return n[i+1:]
	}
	return "latest"
}

// isIndex reports whether mediaType is an image index's (OCI, or a Docker
// manifest list).
func isIndex(mediaType string) bool {
	return mediaType == ocispec.MediaTypeImageIndex || mediaType == exporter.DockerManifestList
}
