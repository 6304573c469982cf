package multiarch

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/builder-dev/builder/attest"
	"github.com/builder-dev/builder/cache/content"
	"github.com/builder-dev/builder/exporter/filetree"
	ocispec "github.com/opencontainers/image-spec/specs-go/v1"
)

// Tree is one platform's image whose file tree an output writes.
type Tree struct {
	Manifest ocispec.Descriptor
	// Dir is the tree's directory in the output (linux_arm64 when several
	// platforms are built, "" for the output's top).
	Dir string
	// Statements are the tree's attestations (SBOM, provenance), written
	// beside its files as sbom.spdx.json and provenance.json about the
	// tree's regular files, as BuildKit's local and tar exporters do.
	Statements []attest.Statement
	// Epoch is the build's SOURCE_DATE_EPOCH, the attestation files'
	// time as BuildKit gives it; nil: the time of the export.
	Epoch *time.Time
}

// WriteDirs writes each tree to its directory of dest (linux_arm64/), as
// BuildKit's local exporter does.
func WriteDirs(ctx context.Context, dest string, store *content.Store, trees []Tree) error {
	for _, t := range trees {
		dir := filepath.Join(dest, t.Dir)
		if len(t.Statements) == 0 {
			if err := filetree.WriteDir(ctx, dir, store, t.Manifest); err != nil {
				return err
			}
			continue
		}
		subjects, err := applyTree(ctx, dir, store, t.Manifest)
		if err != nil {
			return err
		}
		if err := writeStatements(dir, t, subjects); err != nil {
			return fmt.Errorf("attestations of %s: %w", dir, err)
		}
	}
	return nil
}

// applyTree writes an image's file tree into dir, as filetree.WriteDir
// does, and returns its regular files as statement subjects: those of the
// tree written, not what dir held before (an earlier build's files).
func applyTree(ctx context.Context, dir string, store *content.Store, manifest ocispec.Descriptor) ([]attest.Subject, error) {
	var subjects []attest.Subject
	err := filetree.WriteDirFrom(ctx, dir, func(w io.Writer) error {
		tw := tar.NewWriter(w)
		var err error
		if subjects, err = prefixedTar(ctx, tw, "", store, manifest); err != nil {
			return err
		}
		return tw.Close()
	})
	return subjects, err
}

// writeStatements writes t's attestation files into dir, which holds its
// tree. The tree may have a file of the same name, or a symlink there to a
// file of the host: the attestation replaces it (as BuildKit's output
// does), never writes through it.
func writeStatements(dir string, t Tree, subjects []attest.Subject) error {
	root, err := os.OpenRoot(dir)
	if err != nil {
		return err
	}
	defer root.Close()
	return eachFile(t.Statements, subjects, func(name string, b []byte) error {
		if err := root.RemoveAll(name); err != nil {
			return err
		}
		// O_EXCL: a symlink put there since is not followed either.
		f, err := root.OpenFile(name, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		_, err = f.Write(b)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err == nil && t.Epoch != nil {
			err = root.Chtimes(name, *t.Epoch, *t.Epoch)
		}
		return err
	})
}

// eachFile calls write with the file name and bytes of each statement.
func eachFile(sts []attest.Statement, subjects []attest.Subject, write func(name string, b []byte) error) error {
	for _, st := range sts {
		name, err := attest.FileName(st.PredicateType)
		if err != nil {
			return err
		}
		b, err := attest.FileBytes(st, subjects)
		if err != nil {
			return err
		}
		if err := write(name, b); err != nil {
			return err
		}
	}
	return nil
}

// sortSubjects puts subjects in the order of a walk of the tree (a
// directory's files before a sibling "dir-x"), whatever order the tree was
// written in, so a local and a tar output say the same.
func sortSubjects(subjects []attest.Subject) {
	slices.SortFunc(subjects, func(a, b attest.Subject) int {
		return slices.Compare(strings.Split(a.Name, "/"), strings.Split(b.Name, "/"))
	})
}

func subject(name string, sum []byte) attest.Subject {
	return attest.Subject{Name: name, Digest: map[string]string{"sha256": hex.EncodeToString(sum)}}
}

// WriteTar writes the trees as one tar stream, each under its directory,
// as BuildKit's tar exporter does.
func WriteTar(ctx context.Context, w io.Writer, store *content.Store, trees []Tree) error {
	tw := tar.NewWriter(w)
	for _, t := range trees {
		subjects, err := prefixedTar(ctx, tw, t.Dir, store, t.Manifest)
		if err != nil {
			return err
		}
		now := time.Now()
		if t.Epoch != nil {
			now = *t.Epoch
		}
		err = eachFile(t.Statements, subjects, func(name string, b []byte) error {
			hdr := &tar.Header{Name: path.Join(t.Dir, name), Typeflag: tar.TypeReg, Mode: 0o600, Size: int64(len(b)), ModTime: now}
			if err := tw.WriteHeader(hdr); err != nil {
				return err
			}
			_, err := tw.Write(b)
			return err
		})
		if err != nil {
			return fmt.Errorf("attestations of %s: %w", t.Dir, err)
		}
	}
	return tw.Close()
}

// prefixedTar copies the file tree tar of one image into tw under dir/
// (at the top for ""), and returns its regular files as statement
// subjects: a hard link has its target's digest.
func prefixedTar(ctx context.Context, tw *tar.Writer, dir string, store *content.Store, manifest ocispec.Descriptor) ([]attest.Subject, error) {
	pr, pw := io.Pipe()
	go func() { pw.CloseWithError(filetree.WriteTar(ctx, pw, store, manifest)) }()
	defer pr.Close()
	prefix := ""
	if dir != "" {
		prefix = dir + "/"
		if err := tw.WriteHeader(&tar.Header{Name: prefix, Typeflag: tar.TypeDir, Mode: 0o755}); err != nil {
			return nil, err
		}
	}
	var subjects []attest.Subject
	sums := map[string][]byte{}
	tr := tar.NewReader(pr)
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			sortSubjects(subjects)
			return subjects, nil
		}
		if err != nil {
			return nil, err
		}
		name := path.Clean(hdr.Name)
		hdr.Name = prefix + hdr.Name
		if hdr.Typeflag == tar.TypeLink {
			if sum, ok := sums[path.Clean(hdr.Linkname)]; ok {
				subjects = append(subjects, subject(name, sum))
			}
			hdr.Linkname = prefix + hdr.Linkname
		}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, err
		}
		if hdr.Typeflag != tar.TypeReg {
			continue
		}
		h := sha256.New()
		if _, err := io.Copy(io.MultiWriter(tw, h), tr); err != nil {
			return nil, err
		}
		sums[name] = h.Sum(nil)
		subjects = append(subjects, subject(name, sums[name]))
	}
}
