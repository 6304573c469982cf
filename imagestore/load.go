package imagestore

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/builder-dev/builder/cache"
	"github.com/builder-dev/builder/exporter"
	"github.com/builder-dev/builder/platform"
	"github.com/builder-dev/builder/source"
	kgzip "github.com/klauspost/compress/gzip"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Loaded is an image Load or LoadLayout put in the store.
type Loaded struct {
	// Name is the image's name; an image the archive does not name is
	// stored under its manifest digest.
	Name     string
	Manifest ocispec.Descriptor
	// Platforms are, when Manifest is an image index whose images the
	// archive holds, each platform's manifest (with its platform).
	Platforms []ocispec.Descriptor
}

// maxMetaSize bounds the small JSON files of an archive read into memory.
const maxMetaSize = 64 << 20

// Load reads a `docker save` tar or an OCI image layout tar (possibly
// gzip-compressed), stores its blobs, unpacks its layers into snapshots
// and names its images in the store.
func (s *Store) Load(ctx context.Context, r io.Reader) ([]Loaded, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	r = br
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		zr, err := kgzip.NewReader(br)
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		r = zr
	}
	a, err := s.readArchive(ctx, r)
	if err != nil {
		return nil, err
	}
	var images []Loaded
	switch {
	case a.meta["index.json"] != nil:
		images, err = s.ociImages(a.meta["index.json"])
	case a.meta["manifest.json"] != nil:
		images, err = s.dockerImages(ctx, a.meta["manifest.json"], a.lookup)
	default:
		return nil, errors.New("the archive has neither index.json (OCI layout) nor manifest.json (docker save)")
	}
	if err != nil {
		return nil, err
	}
	return s.unpackAll(ctx, images)
}

// LoadLayout loads the images of the OCI image layout directory dir, as
// Load loads a tar of it.
func (s *Store) LoadLayout(ctx context.Context, dir string) ([]Loaded, error) {
	rawIndex, err := readMeta(filepath.Join(dir, "index.json"))
	if err != nil {
		return nil, err
	}
	blobs := filepath.Join(dir, "blobs")
	err = filepath.WalkDir(blobs, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(blobs, p)
		want := blobDigest(filepath.ToSlash(rel))
		if want == "" || s.Content.Exists(want) {
			return nil // a file no index names, or a blob the store has
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		if _, _, err := s.Content.WriteBlob(ctx, f, want); err != nil {
			return fmt.Errorf("blob %s: %w", want, err)
		}
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("reading layout %s: %w", dir, err)
	}
	images, err := s.ociImages(rawIndex)
	if err != nil {
		return nil, err
	}
	return s.unpackAll(ctx, images)
}

// readMeta reads a small file of a layout directory.
func readMeta(p string) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxMetaSize+1))
	if err == nil && len(b) > maxMetaSize {
		err = fmt.Errorf("more than %d bytes", maxMetaSize)
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", p, err)
	}
	return b, nil
}

// blobDigest is the digest a layout's blobs/ALG/HEX path names, or "".
func blobDigest(rel string) digest.Digest {
	alg, hex := path.Split(rel)
	d := digest.NewDigestFromEncoded(digest.Algorithm(strings.TrimSuffix(alg, "/")), hex)
	if d.Validate() != nil {
		return ""
	}
	return d
}

// archiveFiles is what readArchive took from a tar: its small metadata files,
// and the blob each other regular file was stored as.
type archiveFiles struct {
	meta  map[string][]byte
	files map[string]digest.Digest // path -> blob
	links map[string]string        // path -> path it links to
}

// archiveMeta are the small files of an archive read into memory.
var archiveMeta = map[string]bool{"index.json": true, "manifest.json": true, "oci-layout": true, "repositories": true}

// readArchive stores the regular files of a tar stream as blobs (checking
// those whose path names a digest) and keeps its metadata files.
func (s *Store) readArchive(ctx context.Context, r io.Reader) (*archiveFiles, error) {
	a := &archiveFiles{meta: map[string][]byte{}, files: map[string]digest.Digest{}, links: map[string]string{}}
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return a, nil
		}
		if err != nil {
			return nil, fmt.Errorf("reading archive: %w", err)
		}
		p := strings.TrimPrefix(path.Clean("/"+hdr.Name), "/")
		switch hdr.Typeflag {
		case tar.TypeSymlink:
			a.links[p] = path.Join(path.Dir(p), hdr.Linkname)
			continue
		case tar.TypeLink:
			a.links[p] = strings.TrimPrefix(path.Clean("/"+hdr.Linkname), "/")
			continue
		case tar.TypeReg:
		default:
			continue
		}
		if archiveMeta[p] {
			if hdr.Size > maxMetaSize {
				return nil, fmt.Errorf("reading archive: %s is %d bytes", p, hdr.Size)
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				return nil, fmt.Errorf("reading archive: %s: %w", p, err)
			}
			a.meta[p] = b
			continue
		}
		var want digest.Digest
		if rel, ok := strings.CutPrefix(p, "blobs/"); ok {
			want = blobDigest(rel)
		}
		if want != "" && s.Content.Exists(want) {
			a.files[p] = want
			continue
		}
		d, _, err := s.Content.WriteBlob(ctx, tr, want)
		if err != nil {
			return nil, fmt.Errorf("reading archive: %s: %w", p, err)
		}
		a.files[p] = d
	}
}

// lookup is the blob of the archive's file p, following links.
func (a *archiveFiles) lookup(p string) (digest.Digest, error) {
	p = strings.TrimPrefix(path.Clean("/"+p), "/")
	for range 10 {
		if d, ok := a.files[p]; ok {
			return d, nil
		}
		t, ok := a.links[p]
		if !ok {
			break
		}
		p = t
	}
	return "", fmt.Errorf("the archive has no file %s", p)
}

// unpackAll unpacks and names every loaded image.
func (s *Store) unpackAll(ctx context.Context, images []Loaded) ([]Loaded, error) {
	for i, img := range images {
		if err := s.unpack(ctx, &images[i]); err != nil {
			return nil, fmt.Errorf("loading %s: %w", img.Name, err)
		}
	}
	return images, nil
}

// ociImages lists the images of an OCI layout's index.json (its blobs are
// in the content store): the store platform's manifest of nested indexes.
func (s *Store) ociImages(rawIndex []byte) ([]Loaded, error) {
	var idx ocispec.Index
	if err := json.Unmarshal(rawIndex, &idx); err != nil {
		return nil, fmt.Errorf("index.json: %w", err)
	}
	var out []Loaded
	for _, d := range idx.Manifests {
		n := d.Annotations["io.containerd.image.name"]
		if rn := d.Annotations[ocispec.AnnotationRefName]; n == "" && strings.ContainsAny(rn, ":/") {
			n = rn
		}
		if plats := s.indexImages(d); len(plats) > 1 {
			out = append(out, Loaded{Name: n, Manifest: ocispec.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size}, Platforms: plats})
			continue
		}
		desc, err := s.platformManifest(d)
		if err != nil {
			return nil, err
		}
		out = append(out, Loaded{Name: n, Manifest: desc})
	}
	if len(out) == 0 {
		return nil, errors.New("index.json lists no image")
	}
	return out, nil
}

// platformManifest follows indexes down to the store platform's manifest.
func (s *Store) platformManifest(d ocispec.Descriptor) (ocispec.Descriptor, error) {
	for range 4 {
		switch d.MediaType {
		case ocispec.MediaTypeImageIndex, exporter.DockerManifestList:
		default:
			return ocispec.Descriptor{MediaType: d.MediaType, Digest: d.Digest, Size: d.Size}, nil
		}
		raw, err := s.Content.ReadAll(d.Digest)
		if err != nil {
			return d, err
		}
		var idx ocispec.Index
		if err := json.Unmarshal(raw, &idx); err != nil {
			return d, fmt.Errorf("index %s: %w", d.Digest, err)
		}
		p := s.Platform
		found := false
		for _, m := range idx.Manifests {
			if m.Platform != nil && m.Platform.OS == p.OS && m.Platform.Architecture == p.Architecture {
				d, found = m, true
				break
			}
		}
		if !found {
			return d, fmt.Errorf("index %s has no image for %s/%s", d.Digest, p.OS, p.Architecture)
		}
	}
	return d, errors.New("indexes nested too deep")
}

// dockerImages turns a docker save manifest.json into images: a Docker v2
// manifest is made for each (layers keep the compression they have in the
// archive), named by its RepoTags.
func (s *Store) dockerImages(ctx context.Context, rawManifest []byte, lookup func(string) (digest.Digest, error)) ([]Loaded, error) {
	var entries []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(rawManifest, &entries); err != nil {
		return nil, fmt.Errorf("manifest.json: %w", err)
	}
	var out []Loaded
	for _, e := range entries {
		desc, err := s.dockerManifest(ctx, e.Config, e.Layers, lookup)
		if err != nil {
			return nil, err
		}
		if len(e.RepoTags) == 0 {
			out = append(out, Loaded{Manifest: desc})
		}
		for _, n := range e.RepoTags {
			out = append(out, Loaded{Name: n, Manifest: desc})
		}
	}
	return out, nil
}

// dockerManifest writes the Docker v2 manifest of a docker save entry.
func (s *Store) dockerManifest(ctx context.Context, config string, layers []string, lookup func(string) (digest.Digest, error)) (ocispec.Descriptor, error) {
	cfgDigest, err := lookup(config)
	if err != nil {
		return ocispec.Descriptor{}, fmt.Errorf("manifest.json: config: %w", err)
	}
	cfgSize, err := s.Content.Info(cfgDigest)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	m := ocispec.Manifest{
		MediaType: exporter.DockerManifest,
		Config:    ocispec.Descriptor{MediaType: exporter.DockerConfig, Digest: cfgDigest, Size: cfgSize},
		Layers:    []ocispec.Descriptor{},
	}
	m.SchemaVersion = 2
	for _, l := range layers {
		d, err := lookup(l)
		if err != nil {
			return ocispec.Descriptor{}, fmt.Errorf("manifest.json: layer: %w", err)
		}
		size, err := s.Content.Info(d)
		if err != nil {
			return ocispec.Descriptor{}, err
		}
		mt, err := s.sniffLayer(d)
		if err != nil {
			return ocispec.Descriptor{}, err
		}
		m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: mt, Digest: d, Size: size})
	}
	raw, err := json.Marshal(m)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	md, err := s.Content.WriteBytes(ctx, raw)
	if err != nil {
		return ocispec.Descriptor{}, err
	}
	return ocispec.Descriptor{MediaType: exporter.DockerManifest, Digest: md, Size: int64(len(raw))}, nil
}

// sniffLayer names the media type of a layer file of a docker save tar by
// its first bytes: gzip, zstd or (anything else) a plain tar.
func (s *Store) sniffLayer(d digest.Digest) (string, error) {
	rc, err := s.Content.Open(d)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	head := make([]byte, 6)
	n, _ := io.ReadFull(rc, head)
	switch source.DetectCompression(head[:n]) {
	case source.Gzip:
		return exporter.DockerLayerGzip, nil
	case source.Zstd:
		return ocispec.MediaTypeImageLayerZstd, nil
	}
	return exporter.DockerLayer, nil
}

// unpack unpacks a loaded image's layers (as a pull would, checking each
// against its diff_id) and names it in the store; of an index, every
// platform's image.
func (s *Store) unpack(ctx context.Context, img *Loaded) error {
	if img.Name == "" {
		img.Name = img.Manifest.Digest.String()
	} else {
		img.Name = Normalise(img.Name)
	}
	rec := cache.Image{Name: img.Name, Manifest: img.Manifest, Created: time.Now().UTC()}
	if len(img.Platforms) == 0 {
		top, err := s.unpackManifest(ctx, img.Name, img.Manifest)
		rec.Snapshot = top
		if err != nil {
			return err
		}
		return s.DB.PutImage(rec)
	}
	for _, d := range img.Platforms {
		top, err := s.unpackManifest(ctx, img.Name, d)
		if err != nil {
			return fmt.Errorf("platform %s: %w", platform.Format(*d.Platform), err)
		}
		p := *d.Platform
		d.Platform = nil
		rec.Platforms = append(rec.Platforms, cache.PlatformImage{Platform: p, Manifest: d, Snapshot: top})
	}
	pi, err := Pick(rec, s.Platform)
	if err != nil {
		pi = rec.Platforms[0]
	}
	rec.Snapshot = pi.Snapshot
	return s.DB.PutImage(rec)
}

// indexImages are the image manifests of index d whose blobs are all in
// the content store, each with its platform; none when d is not an index
// or nests indexes.
func (s *Store) indexImages(d ocispec.Descriptor) []ocispec.Descriptor {
	if d.MediaType != ocispec.MediaTypeImageIndex && d.MediaType != exporter.DockerManifestList {
		return nil
	}
	raw, err := s.Content.ReadAll(d.Digest)
	var idx ocispec.Index
	if err != nil || json.Unmarshal(raw, &idx) != nil {
		return nil
	}
	var out []ocispec.Descriptor
	for _, m := range idx.Manifests {
		if m.Platform == nil || m.Platform.Architecture == "unknown" {
			continue // an attestation manifest
		}
		if m.MediaType != ocispec.MediaTypeImageManifest && m.MediaType != exporter.DockerManifest {
			return nil
		}
		if !s.hasImage(m.Digest) {
			continue
		}
		out = append(out, ocispec.Descriptor{MediaType: m.MediaType, Digest: m.Digest, Size: m.Size, Platform: m.Platform})
	}
	return out
}

// hasImage reports whether the store holds manifest d, its config and
// its layers.
func (s *Store) hasImage(d digest.Digest) bool {
	raw, err := s.Content.ReadAll(d)
	var m ocispec.Manifest
	if err != nil || json.Unmarshal(raw, &m) != nil || !s.Content.Exists(m.Config.Digest) {
		return false
	}
	for _, l := range m.Layers {
		if !s.Content.Exists(l.Digest) {
			return false
		}
	}
	return true
}

// unpackManifest unpacks the layers of the image manifest desc of the
// loaded image name and returns the top snapshot.
func (s *Store) unpackManifest(ctx context.Context, name string, desc ocispec.Descriptor) (string, error) {
	raw, err := s.Content.ReadAll(desc.Digest)
	if err != nil {
		return "", err
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return "", fmt.Errorf("manifest %s: %w", desc.Digest, err)
	}
	for _, d := range append([]ocispec.Descriptor{m.Config}, m.Layers...) {
		if !s.Content.Exists(d.Digest) {
			return "", fmt.Errorf("the archive lacks blob %s", d.Digest)
		}
	}
	cfg, err := s.Content.ReadAll(m.Config.Digest)
	if err != nil {
		return "", err
	}
	refName := name
	if _, err := s.Registries.ParseReference(refName); err != nil {
		refName = "localhost/loaded@" + desc.Digest.String()
	}
	ref, err := s.Registries.ParseReference(refName)
	if err != nil {
		return "", err
	}
	// Every blob is in the content store, so the puller fetches nothing.
	return s.Puller.Pull(ctx, &source.Resolved{Ref: ref, Digest: desc.Digest, Manifest: m, Config: cfg})
}
