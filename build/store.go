package build

import (
	"archive/tar"
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"time"

	"github.com/builder-dev/builder/cache"
	"github.com/builder-dev/builder/exporter"
	"github.com/builder-dev/builder/frontend/dockerfile"
	"github.com/builder-dev/builder/source"
	"github.com/google/go-containerregistry/pkg/authn"
	kgzip "github.com/klauspost/compress/gzip"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// localFirst resolves FROM names in the local image store first, as
// `docker build` does, and in their registry otherwise.
type localFirst struct {
	s      *State
	remote resolver
}

func (s *State) resolver() dockerfile.ImageResolver {
	return localFirst{s: s, remote: resolver{s.Registries}}
}

func (r localFirst) ResolveImage(ctx context.Context, ref string, p ocispec.Platform) (dockerfile.ResolvedImage, error) {
	if !strings.Contains(ref, "@") {
		if res, ok := r.local(ref, p); ok {
			return res, nil
		}
	}
	return r.remote.ResolveImage(ctx, ref, p)
}

// local finds ref in the local store, with every blob the build will need
// and for platform p.
func (r localFirst) local(ref string, p ocispec.Platform) (dockerfile.ResolvedImage, bool) {
	rec, err := r.s.DB.Image(normaliseName(ref))
	if err != nil {
		return dockerfile.ResolvedImage{}, false
	}
	raw, err := r.s.Content.ReadAll(rec.Manifest.Digest)
	if err != nil {
		return dockerfile.ResolvedImage{}, false
	}
	var m ocispec.Manifest
	if json.Unmarshal(raw, &m) != nil || m.Config.Digest == "" {
		return dockerfile.ResolvedImage{}, false
	}
	for _, l := range m.Layers {
		if !r.s.Content.Exists(l.Digest) {
			return dockerfile.ResolvedImage{}, false
		}
	}
	rawConfig, err := r.s.Content.ReadAll(m.Config.Digest)
	if err != nil {
		return dockerfile.ResolvedImage{}, false
	}
	var img dockerfile.Image
	if json.Unmarshal(rawConfig, &img) != nil {
		return dockerfile.ResolvedImage{}, false
	}
	if (img.OS != "" && img.OS != p.OS) || (img.Architecture != "" && img.Architecture != p.Architecture) {
		return dockerfile.ResolvedImage{}, false
	}
	return dockerfile.ResolvedImage{Digest: rec.Manifest.Digest, Config: img}, true
}

// Tag gives the image named src the name dst too.
func (s *State) Tag(src, dst string) error {
	rec, err := s.Image(src)
	if err != nil {
		return err
	}
	rec.Name = normaliseName(dst)
	if _, err := s.Registries.ParseReference(rec.Name); err != nil {
		return err
	}
	return s.DB.PutImage(rec)
}

// Remove takes names out of the local store. What only they used is freed
// by the next prune or automatic GC.
func (s *State) Remove(names ...string) error {
	var errs []error
	for _, n := range names {
		if err := s.DB.DeleteImage(normaliseName(n)); err != nil {
			if errors.Is(err, cache.ErrNotFound) {
				err = fmt.Errorf("image %s is not in the local store (see `builder images`)", n)
			}
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// Push uploads the image named n to the registry its name says.
func (s *State) Push(ctx context.Context, n string, kc authn.Keychain) error {
	rec, err := s.Image(n)
	if err != nil {
		return err
	}
	ref, err := s.Registries.ParseReference(rec.Name)
	if err != nil {
		return err
	}
	return exporter.Push(ctx, s.Content, rec.Manifest, ref, kc, s.DB)
}

// Save writes the named images to w as a `docker save` tar (format
// "docker", the default) or an OCI image layout tar ("oci").
func (s *State) Save(w io.Writer, format string, names ...string) error {
	var images []exporter.ArchiveImage
	for _, n := range names {
		rec, err := s.Image(n)
		if err != nil {
			return err
		}
		found := false
		for i := range images {
			if images[i].Manifest.Digest == rec.Manifest.Digest {
				images[i].Names = append(images[i].Names, rec.Name)
				found = true
			}
		}
		if !found {
			images = append(images, exporter.ArchiveImage{Manifest: rec.Manifest, Names: []string{rec.Name}})
		}
	}
	switch format {
	case "", "docker":
		return exporter.WriteDockerArchive(exporter.TarSink(w), s.Content, images)
	case "oci":
		return exporter.WriteOCIArchive(exporter.TarSink(w), s.Content, images)
	}
	return fmt.Errorf("unknown format %q (want docker or oci)", format)
}

// LoadedImage is an image Load put in the local store.
type LoadedImage struct {
	// Name is the image's name; an image the archive does not name is
	// stored under its manifest digest.
	Name     string
	Manifest ocispec.Descriptor
}

// archiveMeta are the small files of an archive read into memory.
var archiveMeta = map[string]bool{"index.json": true, "manifest.json": true, "oci-layout": true, "repositories": true}

// Load reads a `docker save` tar or an OCI image layout tar (possibly
// gzip-compressed), stores its blobs, unpacks its layers into snapshots
// and names its images in the local store.
func (s *State) Load(ctx context.Context, r io.Reader) ([]LoadedImage, error) {
	br := bufio.NewReaderSize(r, 1<<20)
	if magic, _ := br.Peek(2); bytes.Equal(magic, []byte{0x1f, 0x8b}) {
		zr, err := kgzip.NewReader(br)
		if err != nil {
			return nil, err
		}
		defer zr.Close()
		r = zr
	} else {
		r = br
	}
	meta := map[string][]byte{}
	files := map[string]digest.Digest{} // path -> blob
	links := map[string]string{}        // path -> path it links to
	tr := tar.NewReader(r)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading archive: %w", err)
		}
		p := strings.TrimPrefix(path.Clean("/"+hdr.Name), "/")
		switch hdr.Typeflag {
		case tar.TypeSymlink:
			links[p] = path.Join(path.Dir(p), hdr.Linkname)
			continue
		case tar.TypeLink:
			links[p] = strings.TrimPrefix(path.Clean("/"+hdr.Linkname), "/")
			continue
		case tar.TypeReg:
		default:
			continue
		}
		if archiveMeta[p] {
			if hdr.Size > 64<<20 {
				return nil, fmt.Errorf("reading archive: %s is %d bytes", p, hdr.Size)
			}
			b, err := io.ReadAll(tr)
			if err != nil {
				return nil, fmt.Errorf("reading archive: %s: %w", p, err)
			}
			meta[p] = b
			continue
		}
		var want digest.Digest
		if dir, hex := path.Split(p); strings.HasPrefix(dir, "blobs/") {
			want = digest.NewDigestFromEncoded(digest.Algorithm(strings.TrimSuffix(strings.TrimPrefix(dir, "blobs/"), "/")), hex)
			if want.Validate() != nil {
				want = ""
			}
		}
		if want != "" && s.Content.Exists(want) {
			files[p] = want
			continue
		}
		d, _, err := s.Content.WriteBlob(ctx, tr, want)
		if err != nil {
			return nil, fmt.Errorf("reading archive: %s: %w", p, err)
		}
		files[p] = d
	}
	lookup := func(p string) (digest.Digest, error) {
		p = strings.TrimPrefix(path.Clean("/"+p), "/")
		for range 10 {
			if d, ok := files[p]; ok {
				return d, nil
			}
			t, ok := links[p]
			if !ok {
				break
			}
			p = t
		}
		return "", fmt.Errorf("the archive has no file %s", p)
	}

	var images []LoadedImage
	var err error
	switch {
	case meta["index.json"] != nil:
		images, err = s.ociImages(meta["index.json"])
	case meta["manifest.json"] != nil:
		images, err = s.dockerImages(ctx, meta["manifest.json"], lookup)
	default:
		return nil, errors.New("the archive has neither index.json (OCI layout) nor manifest.json (docker save)")
	}
	if err != nil {
		return nil, err
	}
	for i, img := range images {
		if err := s.unpackLoaded(ctx, &images[i]); err != nil {
			return nil, fmt.Errorf("loading %s: %w", img.Name, err)
		}
	}
	return images, nil
}

// ociImages lists the images of an OCI layout's index.json (its blobs are
// in the content store): the host platform's manifest of nested indexes.
func (s *State) ociImages(rawIndex []byte) ([]LoadedImage, error) {
	var idx ocispec.Index
	if err := json.Unmarshal(rawIndex, &idx); err != nil {
		return nil, fmt.Errorf("index.json: %w", err)
	}
	var out []LoadedImage
	for _, d := range idx.Manifests {
		n := d.Annotations["io.containerd.image.name"]
		if rn := d.Annotations[ocispec.AnnotationRefName]; n == "" && strings.ContainsAny(rn, ":/") {
			n = rn
		}
		desc, err := s.platformManifest(d)
		if err != nil {
			return nil, err
		}
		out = append(out, LoadedImage{Name: n, Manifest: desc})
	}
	if len(out) == 0 {
		return nil, errors.New("index.json lists no image")
	}
	return out, nil
}

// platformManifest follows indexes down to the host platform's manifest.
func (s *State) platformManifest(d ocispec.Descriptor) (ocispec.Descriptor, error) {
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
		p := HostPlatform()
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
func (s *State) dockerImages(ctx context.Context, rawManifest []byte, lookup func(string) (digest.Digest, error)) ([]LoadedImage, error) {
	var entries []struct {
		Config   string
		RepoTags []string
		Layers   []string
	}
	if err := json.Unmarshal(rawManifest, &entries); err != nil {
		return nil, fmt.Errorf("manifest.json: %w", err)
	}
	var out []LoadedImage
	for _, e := range entries {
		cfgDigest, err := lookup(e.Config)
		if err != nil {
			return nil, fmt.Errorf("manifest.json: config: %w", err)
		}
		cfgSize, err := s.Content.Info(cfgDigest)
		if err != nil {
			return nil, err
		}
		m := ocispec.Manifest{
			MediaType: exporter.DockerManifest,
			Config:    ocispec.Descriptor{MediaType: exporter.DockerConfig, Digest: cfgDigest, Size: cfgSize},
			Layers:    []ocispec.Descriptor{},
		}
		m.SchemaVersion = 2
		for _, l := range e.Layers {
			d, err := lookup(l)
			if err != nil {
				return nil, fmt.Errorf("manifest.json: layer: %w", err)
			}
			size, err := s.Content.Info(d)
			if err != nil {
				return nil, err
			}
			mt, err := s.sniffLayer(d)
			if err != nil {
				return nil, err
			}
			m.Layers = append(m.Layers, ocispec.Descriptor{MediaType: mt, Digest: d, Size: size})
		}
		raw, err := json.Marshal(m)
		if err != nil {
			return nil, err
		}
		md, err := s.Content.WriteBytes(ctx, raw)
		if err != nil {
			return nil, err
		}
		desc := ocispec.Descriptor{MediaType: exporter.DockerManifest, Digest: md, Size: int64(len(raw))}
		if len(e.RepoTags) == 0 {
			out = append(out, LoadedImage{Manifest: desc})
		}
		for _, n := range e.RepoTags {
			out = append(out, LoadedImage{Name: n, Manifest: desc})
		}
	}
	return out, nil
}

// sniffLayer names the media type of a layer file of a docker save tar by
// its first bytes.
func (s *State) sniffLayer(d digest.Digest) (string, error) {
	rc, err := s.Content.Open(d)
	if err != nil {
		return "", err
	}
	defer rc.Close()
	head := make([]byte, 4)
	n, _ := io.ReadFull(rc, head)
	switch {
	case n >= 2 && head[0] == 0x1f && head[1] == 0x8b:
		return exporter.DockerLayerGzip, nil
	case n == 4 && bytes.Equal(head, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		return ocispec.MediaTypeImageLayerZstd, nil
	}
	return exporter.DockerLayer, nil
}

// unpackLoaded unpacks a loaded image's layers (as a pull would, checking
// each against its diff_id) and names it in the local store.
func (s *State) unpackLoaded(ctx context.Context, img *LoadedImage) error {
	raw, err := s.Content.ReadAll(img.Manifest.Digest)
	if err != nil {
		return err
	}
	var m ocispec.Manifest
	if err := json.Unmarshal(raw, &m); err != nil {
		return fmt.Errorf("manifest %s: %w", img.Manifest.Digest, err)
	}
	for _, d := range append([]ocispec.Descriptor{m.Config}, m.Layers...) {
		if !s.Content.Exists(d.Digest) {
			return fmt.Errorf("the archive lacks blob %s", d.Digest)
		}
	}
	cfg, err := s.Content.ReadAll(m.Config.Digest)
	if err != nil {
		return err
	}
	if img.Name == "" {
		img.Name = img.Manifest.Digest.String()
	} else {
		img.Name = normaliseName(img.Name)
	}
	refName := img.Name
	if _, err := s.Registries.ParseReference(refName); err != nil {
		refName = "localhost/loaded@" + img.Manifest.Digest.String()
	}
	ref, err := s.Registries.ParseReference(refName)
	if err != nil {
		return err
	}
	// Every blob is in the content store, so the puller fetches nothing.
	top, err := s.worker.Puller.Pull(ctx, &source.Resolved{Ref: ref, Digest: img.Manifest.Digest, Manifest: m, Config: cfg})
	if err != nil {
		return err
	}
	return s.DB.PutImage(cache.Image{Name: img.Name, Manifest: img.Manifest, Snapshot: top, Created: time.Now().UTC()})
}
