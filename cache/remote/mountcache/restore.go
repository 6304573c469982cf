package mountcache

import (
	"archive/tar"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"

	"github.com/builder-dev/builder/cache/content"
	"github.com/builder-dev/builder/internal/archive"
	"github.com/klauspost/compress/gzip"
	"github.com/opencontainers/go-digest"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
	"golang.org/x/sync/errgroup"
)

// Check checks the cache mounts of an imported config against caps,
// so a hostile config cannot ask a restore for unbounded work, and
// indexes them by key.
func Check(cms []Entry) (map[string]*Entry, error) {
	if len(cms) > MaxMounts {
		return nil, fmt.Errorf("cache config: %d cache mounts (at most %d)", len(cms), MaxMounts)
	}
	out := map[string]*Entry{}
	for i := range cms {
		cm := &cms[i]
		if _, err := hex.DecodeString(cm.Key); err != nil || len(cm.Key) != keySize {
			return nil, fmt.Errorf("cache config: cache mount key %q is not a hex sha256", cm.Key)
		}
		if len(cm.Parts) == 0 || len(cm.Parts) > MaxParts {
			return nil, fmt.Errorf("cache config: cache mount %s has %d parts (1 to %d)", cm.ID, len(cm.Parts), MaxParts)
		}
		var total int64
		for _, p := range cm.Parts {
			if err := p.Blob.Digest.Validate(); err != nil {
				return nil, fmt.Errorf("cache config: cache mount %s: %w", cm.ID, err)
			}
			if err := p.DiffID.Validate(); err != nil {
				return nil, fmt.Errorf("cache config: cache mount %s: %w", cm.ID, err)
			}
			if p.Blob.MediaType != ocispec.MediaTypeImageLayerGzip || p.Size < 0 || p.Blob.Size < 0 {
				return nil, fmt.Errorf("cache config: cache mount %s: part %s is not a sized gzip tar", cm.ID, p.Blob.Digest)
			}
			total += p.Size + p.Blob.Size
			if total > MaxRestore {
				return nil, fmt.Errorf("cache config: cache mount %s is over %d bytes", cm.ID, MaxRestore)
			}
		}
		if _, dup := out[cm.Key]; !dup {
			out[cm.Key] = cm
		}
	}
	return out, nil
}

// EmptyOrAbsent tells whether dir has no entries.
func EmptyOrAbsent(dir string) bool {
	f, err := os.Open(dir)
	if err != nil {
		return errors.Is(err, os.ErrNotExist)
	}
	defer f.Close()
	names, _ := f.Readdirnames(1)
	return len(names) == 0
}

// Restore fetches the parts of cm with fetch (into store) and unpacks them, confined, into a
// directory beside dir, which then becomes dir: nobody sees a half-made
// cache, and a concurrent user that made dir first wins.
func Restore(ctx context.Context, store *content.Store, cm *Entry, dir string, fetch func(context.Context, ocispec.Descriptor) error) error {
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(4)
	for _, p := range cm.Parts {
		g.Go(func() error { return fetch(gctx, p.Blob) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".restore-")
	if err != nil {
		return err
	}
	defer archive.RemoveAll(tmp)
	// Parents are listed first; unpacked last, a parent's part sets its
	// directory's times after its subdirectories' parts are written
	// there, so a restored cache exports again as the same blobs.
	for _, p := range slices.Backward(cm.Parts) {
		if err := extractPart(ctx, store, tmp, p); err != nil {
			return fmt.Errorf("part %s (%s): %w", p.Blob.Digest, p.Path, err)
		}
	}
	if err := os.Rename(tmp, dir); err == nil || !EmptyOrAbsent(dir) {
		return nil // restored, or someone else filled it first
	}
	// dir exists, empty: a user may have it mounted, so fill it rather
	// than replace it.
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if err := os.Rename(filepath.Join(tmp, e.Name()), filepath.Join(dir, e.Name())); err != nil {
			return err
		}
	}
	return nil
}

// extractPart unpacks part p into dir with the hardened extractor (no
// path leaves dir), reading at most its declared size and checking the
// tar's digest.
func extractPart(ctx context.Context, store *content.Store, dir string, p Part) error {
	rc, err := store.Open(p.Blob.Digest)
	if err != nil {
		return err
	}
	defer rc.Close()
	zr, err := gzip.NewReader(rc)
	if err != nil {
		return err
	}
	lr := &io.LimitedReader{R: zr, N: p.Size + 1}
	dig := digest.SHA256.Digester()
	r := io.TeeReader(lr, dig.Hash())
	exp := &archive.Expansion{Compressed: p.Blob.Size, What: "cache mount part " + p.Blob.Digest.String()}
	pr, pw := io.Pipe()
	filtered := make(chan error, 1)
	go func() {
		err := filesOnly(tar.NewReader(r), pw)
		pw.CloseWithError(err)
		filtered <- err
	}()
	_, err = archive.Extract(ctx, dir, tar.NewReader(pr), archive.Options{Expansion: exp})
	if err == nil {
		_, err = io.Copy(io.Discard, pr) // the end of the tar
	}
	pr.CloseWithError(io.ErrClosedPipe) // stops filesOnly when Extract failed
	if ferr := <-filtered; err == nil {
		err = ferr
	}
	if err == nil {
		_, err = io.Copy(io.Discard, r) // the rest, for the digest
	}
	if lr.N == 0 {
		return fmt.Errorf("tar is over its declared %d bytes", p.Size)
	}
	if err != nil {
		return err
	}
	if got := dig.Digest(); got != p.DiffID {
		return fmt.Errorf("tar digest %s, want %s", got, p.DiffID)
	}
	return nil
}

// filesOnly copies the tar tr to w, refusing what an exported cache mount
// never holds (devices, pipes, hard links) and dropping setuid and setgid
// bits: a cache from a registry is bind-mounted into steps and sits in the
// state directory, so it may bring files, not privileges.
func filesOnly(tr *tar.Reader, w io.Writer) error {
	tw := tar.NewWriter(w)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return tw.Close()
		}
		if err != nil {
			return err
		}
		switch hdr.Typeflag {
		case tar.TypeReg, tar.TypeDir, tar.TypeSymlink:
		default:
			return fmt.Errorf("entry %q: type %q is not a file, directory or symlink", hdr.Name, hdr.Typeflag)
		}
		hdr.Mode &^= 0o6000
		if err := tw.WriteHeader(hdr); err != nil {
			return err
		}
		if _, err := io.Copy(tw, tr); err != nil {
			return err
		}
	}
}
