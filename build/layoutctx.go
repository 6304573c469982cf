package build

import (
	"archive/tar"
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/opencontainers/go-digest"
)

// layoutContext loads the image of an oci-layout:// build context
// (PATH or PATH@sha256:...) into the local store and returns the
// docker-image:// reference the frontend resolves it by.
func (s *State) layoutContext(ctx context.Context, name, value string) (string, error) {
	dir, want, _ := strings.Cut(strings.TrimPrefix(value, "oci-layout://"), "@")
	abs, err := filepath.Abs(dir)
	if err != nil {
		return "", err
	}
	if _, err := os.Stat(filepath.Join(abs, "index.json")); err != nil {
		return "", fmt.Errorf("--build-context %s=%s: not an OCI image layout (no index.json)", name, value)
	}
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(tarDir(pw, abs)) }()
	images, err := s.Load(ctx, pr)
	pr.Close()
	if err != nil {
		return "", fmt.Errorf("--build-context %s=%s: %w", name, value, err)
	}
	for _, img := range images {
		if want != "" && img.Manifest.Digest.String() != want {
			continue
		}
		// A name that says where it came from, in the local store only.
		local := "builder-context/" + strings.ToLower(name) + ":" + img.Manifest.Digest.Encoded()[:12]
		if err := s.Tag(img.Name, local); err != nil {
			return "", err
		}
		return "docker-image://" + local, nil
	}
	if want != "" {
		if _, err := digest.Parse(want); err != nil {
			return "", fmt.Errorf("--build-context %s=%s: %q is not a digest", name, value, want)
		}
		return "", fmt.Errorf("--build-context %s=%s: the layout has no image %s", name, value, want)
	}
	return "", fmt.Errorf("--build-context %s=%s: the layout has no image for this platform", name, value)
}

// tarDir writes the regular files below dir as a tar stream.
func tarDir(w io.Writer, dir string) error {
	tw := tar.NewWriter(w)
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		fi, err := d.Info()
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Name: filepath.ToSlash(rel), Mode: 0o644, Size: fi.Size(), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		defer f.Close()
		_, err = io.Copy(tw, f)
		return err
	})
	if err != nil {
		return err
	}
	return tw.Close()
}
