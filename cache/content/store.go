// Package content is the content-addressed blob store of the state directory:
// OCI blobs (layers, configs, manifests) named by their digest.
//
// Layout under the store root:
//
//	blobs/sha256/<hex>   committed blobs, read-only, always complete
//	ingest/              partial writes; a file here is never trusted
//
// A blob appears under blobs/ only by an atomic rename of a fully written,
// fsynced and verified ingest file, so a killed process can leave debris in
// ingest/ but never a partial blob. Reads verify the digest as they go.
package content

import (
	_ "crypto/sha256" // the digest algorithm of every blob
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/opencontainers/go-digest"
)

// ErrDigestMismatch is wrapped by errors reporting content whose digest is
// not the expected one.
var ErrDigestMismatch = errors.New("digest mismatch")

// ErrSizeMismatch is wrapped by errors reporting content whose size is not
// the expected one.
var ErrSizeMismatch = errors.New("size mismatch")

const (
	blobsDir  = "blobs"
	ingestDir = "ingest"
)

// Store is a content store rooted at a directory. It is safe for concurrent
// use by several goroutines and several processes sharing the root.
type Store struct {
	root string
}

// NewStore opens the store at root, creating its directories if needed.
func NewStore(root string) (*Store, error) {
	for _, dir := range []string{
		filepath.Join(root, blobsDir, digest.Canonical.String()),
		filepath.Join(root, ingestDir),
	} {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			return nil, fmt.Errorf("creating content store: %w", err)
		}
	}
	return &Store{root: root}, nil
}

// Root returns the directory the store lives in.
func (s *Store) Root() string { return s.root }

// Path returns where the blob d is (or would be) stored. It does not check
// that d is well formed; the other methods do.
func (s *Store) Path(d digest.Digest) string {
	return filepath.Join(s.root, blobsDir, d.Algorithm().String(), d.Encoded())
}

// checkDigest rejects digests that are malformed or use an algorithm the
// store does not hold. A valid digest cannot escape the blobs directory.
func checkDigest(d digest.Digest) error {
	if err := d.Validate(); err != nil {
		return fmt.Errorf("invalid digest %q: %w", d, err)
	}
	if d.Algorithm() != digest.Canonical {
		return fmt.Errorf("digest %s: unsupported algorithm %s, only %s is stored", d, d.Algorithm(), digest.Canonical)
	}
	return nil
}

// notFound turns a missing-file error into one naming the digest and
// wrapping fs.ErrNotExist; other errors get the digest as context.
func notFound(d digest.Digest, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("blob %s: %w", d, fs.ErrNotExist)
	}
	return fmt.Errorf("blob %s: %w", d, err)
}

// Info returns the size of blob d. A missing blob gives an error wrapping
// fs.ErrNotExist.
func (s *Store) Info(d digest.Digest) (int64, error) {
	if err := checkDigest(d); err != nil {
		return 0, err
	}
	fi, err := os.Stat(s.Path(d))
	if err != nil {
		return 0, notFound(d, err)
	}
	if !fi.Mode().IsRegular() {
		return 0, fmt.Errorf("blob %s: not a regular file (%v)", d, fi.Mode().Type())
	}
	return fi.Size(), nil
}

// Exists reports whether blob d is in the store.
func (s *Store) Exists(d digest.Digest) bool {
	_, err := s.Info(d)
	return err == nil
}

// Open returns a reader of blob d that checks the digest while it is read:
// instead of io.EOF, the last Read returns an error wrapping
// ErrDigestMismatch if the bytes on disk do not match d. Content is only
// verified when read to the end.
func (s *Store) Open(d digest.Digest) (io.ReadCloser, error) {
	if err := checkDigest(d); err != nil {
		return nil, err
	}
	f, err := os.Open(s.Path(d))
	if err != nil {
		return nil, notFound(d, err)
	}
	return &verifyReader{f: f, want: d, verifier: d.Verifier()}, nil
}

// ReadAll returns the verified content of blob d.
func (s *Store) ReadAll(d digest.Digest) ([]byte, error) {
	rc, err := s.Open(d)
	if err != nil {
		return nil, err
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		return nil, err
	}
	return b, nil
}

// Delete removes blob d. Deleting a missing blob gives an error wrapping
// fs.ErrNotExist.
func (s *Store) Delete(d digest.Digest) error {
	if err := checkDigest(d); err != nil {
		return err
	}
	if err := os.Remove(s.Path(d)); err != nil {
		return notFound(d, err)
	}
	return nil
}

// Walk calls fn for every committed blob, in digest order within an
// algorithm. Files that are not named like a blob are ignored, as are blobs
// deleted while the walk runs. An error from fn stops the walk and is
// returned.
func (s *Store) Walk(fn func(d digest.Digest, size int64) error) error {
	algs, err := os.ReadDir(filepath.Join(s.root, blobsDir))
	if err != nil {
		return fmt.Errorf("walking content store: %w", err)
	}
	for _, alg := range algs {
		if !alg.IsDir() {
			continue
		}
		dir := filepath.Join(s.root, blobsDir, alg.Name())
		entries, err := os.ReadDir(dir)
		if err != nil {
			return fmt.Errorf("walking content store: %w", err)
		}
		for _, e := range entries {
			d := digest.NewDigestFromEncoded(digest.Algorithm(alg.Name()), e.Name())
			if d.Validate() != nil || !e.Type().IsRegular() {
				continue
			}
			fi, err := e.Info()
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			if err != nil {
				return fmt.Errorf("walking content store: %w", err)
			}
			if err := fn(d, fi.Size()); err != nil {
				return err
			}
		}
	}
	return nil
}

// verifyReader hashes what it reads and, at EOF, replaces io.EOF with a
// mismatch error when the content does not match want.
type verifyReader struct {
	f        *os.File
	want     digest.Digest
	verifier digest.Verifier
	n        int64
	err      error // sticky result once EOF was seen
}

func (r *verifyReader) Read(p []byte) (int, error) {
	if r.err != nil {
		return 0, r.err
	}
	n, err := r.f.Read(p)
	r.n += int64(n)
	r.verifier.Write(p[:n]) // a digest.Verifier never fails to write
	if err == io.EOF {
		if !r.verifier.Verified() {
			err = fmt.Errorf("blob %s (%s, %d bytes) is corrupt: %w", r.want, r.f.Name(), r.n, ErrDigestMismatch)
		}
		r.err = err
	}
	return n, err
}

func (r *verifyReader) Close() error { return r.f.Close() }
