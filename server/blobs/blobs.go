// Package blobs is the serve side of context sync: file contents by
// sha256 under the server's state directory, and the project directories
// assembled from them.
package blobs

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"
	"time"

	"github.com/builder-dev/builder/server/api"
)

// Store holds context file contents by sha256, under the server's
// state directory, so that a later build of the same project uploads only
// what changed.
type Store struct{ Dir string }

func (b *Store) Path(dgst string) (string, error) {
	hexsum, ok := strings.CutPrefix(dgst, "sha256:")
	if !ok || len(hexsum) != 64 {
		return "", fmt.Errorf("digest %q: want sha256:<64 hex digits>", dgst)
	}
	if _, err := hex.DecodeString(hexsum); err != nil {
		return "", fmt.Errorf("digest %q: %w", dgst, err)
	}
	return filepath.Join(b.Dir, hexsum), nil
}

func (b *Store) Has(dgst string) bool {
	p, err := b.Path(dgst)
	if err != nil {
		return false
	}
	_, err = os.Stat(p)
	return err == nil
}

// put stores r's content under dgst after checking it: write to a temporary
// file, verify size and digest, then rename, so a reader never sees half a
// blob or a blob under a wrong name.
func (b *Store) Put(dgst string, size int64, r io.Reader) (int64, error) {
	p, err := b.Path(dgst)
	if err != nil {
		return 0, err
	}
	f, err := os.CreateTemp(b.Dir, "ingest-")
	if err != nil {
		return 0, err
	}
	defer os.Remove(f.Name())
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(r, size+1))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return n, fmt.Errorf("storing %s: %w", dgst, err)
	}
	if n != size {
		return n, fmt.Errorf("storing %s: got %d bytes, want %d", dgst, n, size)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != dgst {
		return n, fmt.Errorf("storing %s: content has digest %s", dgst, got)
	}
	return n, os.Rename(f.Name(), p)
}

// CheckPath refuses context paths that could leave the context directory.
func CheckPath(p string) error {
	if p == "." {
		return nil
	}
	if p == "" || path.IsAbs(p) || path.Clean(p) != p || p == ".." || strings.HasPrefix(p, "../") || strings.Contains(p, "\\") {
		return fmt.Errorf("context path %q: want a clean relative path", p)
	}
	return nil
}

// assemble writes the context files lists into dir from the blob store.
func (b *Store) Assemble(dir string, files []api.File) error {
	return b.Update(dir, nil, files)
}

// update turns dir, which holds the listing old (nil: dir is new), into
// one holding files: what is gone or changed is removed, what is new or
// changed is written, what is unchanged keeps its inode (so the state's
// file digest memory still holds for it). Symlinks are made last and no
// entry may lie below a listed symlink, so nothing is written through one.
func (b *Store) Update(dir string, old map[string]api.File, files []api.File) error {
	listed := make(map[string]api.File, len(files))
	for _, f := range files {
		if err := CheckPath(f.Path); err != nil {
			return err
		}
		listed[f.Path] = f
	}
	for _, f := range files {
		for p := path.Dir(f.Path); p != "." && p != "/"; p = path.Dir(p) {
			if fs.FileMode(listed[p].Mode)&fs.ModeSymlink != 0 {
				return fmt.Errorf("context path %q lies below the symlink %q", f.Path, p)
			}
		}
	}
	for p, o := range old {
		if n, ok := listed[p]; !ok || !sameContent(o, n) {
			if err := os.RemoveAll(filepath.Join(dir, filepath.FromSlash(p))); err != nil {
				return err
			}
		}
	}
	var links, dirs []api.File
	for _, f := range files {
		mode := fs.FileMode(f.Mode)
		dst := filepath.Join(dir, filepath.FromSlash(f.Path))
		o, had := old[f.Path]
		keep := had && sameContent(o, f)
		switch {
		case mode.IsDir():
			if err := os.MkdirAll(dst, 0o755); err != nil {
				return err
			}
			dirs = append(dirs, f)
		case mode&fs.ModeSymlink != 0:
			if !keep {
				links = append(links, f)
			}
		case mode.IsRegular():
			if keep && o.Mode == f.Mode && o.MtimeNs == f.MtimeNs {
				continue
			}
			if !keep {
				if err := b.copyOut(f.Digest, dst, mode.Perm()); err != nil {
					return fmt.Errorf("context file %s: %w", f.Path, err)
				}
			}
			if err := setMeta(dst, f); err != nil {
				return err
			}
		default:
			return fmt.Errorf("context file %s: unsupported type %v", f.Path, mode.Type())
		}
	}
	for _, f := range links {
		dst := filepath.Join(dir, filepath.FromSlash(f.Path))
		if err := os.Symlink(f.Link, dst); err != nil {
			return fmt.Errorf("context file %s: %w", f.Path, err)
		}
	}
	// Directories last: writing their contents changed their times.
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := setMeta(filepath.Join(dir, filepath.FromSlash(dirs[i].Path)), dirs[i]); err != nil {
			return err
		}
	}
	return nil
}

// sameContent reports whether a listed path can stay as it is on disk:
// same type, content and link target (mode and times are set in place).
func sameContent(a, b api.File) bool {
	return fs.FileMode(a.Mode).Type() == fs.FileMode(b.Mode).Type() && a.Digest == b.Digest && a.Link == b.Link
}

func setMeta(p string, f api.File) error {
	mode := fs.FileMode(f.Mode)
	if err := os.Chmod(p, mode.Perm()|mode&(fs.ModeSetuid|fs.ModeSetgid|fs.ModeSticky)); err != nil {
		return err
	}
	if f.MtimeNs != 0 {
		t := time.Unix(0, f.MtimeNs)
		return os.Chtimes(p, t, t)
	}
	return nil
}

func (b *Store) copyOut(dgst, dst string, perm fs.FileMode) error {
	src, err := b.Path(dgst)
	if err != nil {
		return err
	}
	in, err := os.Open(src)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("content %s was not uploaded", dgst)
		}
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, perm|0o200)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, in)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}
