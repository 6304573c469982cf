//go:build linux

package snapshot

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/builder-dev/builder/snapshot/treecopy"
)

const (
	copiedMarker = "copied"
	parentsFile  = "parents"
)

// prepareCopy builds root/<id>/rootfs from the merged view of parents.
func (s *copySnapshotter) prepareCopy(id string, parents []string) error {
	for _, p := range parents {
		if err := checkID(p); err != nil {
			return err
		}
	}
	rootfs := s.rootfs(id)
	if len(parents) == 0 {
		if err := os.Mkdir(rootfs, 0o755); err != nil {
			return err
		}
		if err := os.Chmod(rootfs, 0o755); err != nil {
			return err
		}
	} else {
		view, err := s.ensureView(parents)
		if err != nil {
			return err
		}
		if err := treecopy.Merge(rootfs, []string{view}, s.userXattr); err != nil {
			return err
		}
	}
	if err := os.WriteFile(filepath.Join(s.dir(id), parentsFile), []byte(strings.Join(parents, "\n")), 0o600); err != nil {
		return err
	}
	// Written last: anything in rootfs with a newer ctime may have been
	// changed after the copy.
	return os.WriteFile(filepath.Join(s.dir(id), copiedMarker), nil, 0o600)
}

// ensureView returns the directory holding the merged view of parents,
// building it from the layers if it does not exist yet.
func (s *copySnapshotter) ensureView(parents []string) (string, error) {
	for _, p := range parents {
		if err := checkID(p); err != nil {
			return "", err
		}
	}
	for _, p := range parents {
		if !s.Exists(p) {
			return "", fmt.Errorf("building view: snapshot %s: %w", p, os.ErrNotExist)
		}
	}
	dir := s.viewDir(parents)
	if _, err := os.Lstat(dir); err == nil {
		return dir, nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o700); err != nil {
		return "", fmt.Errorf("building view: %w", err)
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), ".tmp-")
	if err != nil {
		return "", fmt.Errorf("building view: %w", err)
	}
	defer removeAll(tmp)
	layers := make([]string, 0, len(parents)+1)
	for _, p := range parents {
		layers = append(layers, s.FS(p))
	}
	layers = append(layers, filepath.Join(s.root, emptyDir))
	built := filepath.Join(tmp, "v")
	if err := treecopy.Merge(built, layers, s.userXattr); err != nil {
		return "", fmt.Errorf("building the merged view of %s: %w", strings.Join(parents, ", "), err)
	}
	// Recorded parents' views are reused after a crash: one must not be
	// torn.
	if err := syncFS(built); err != nil {
		return "", fmt.Errorf("building view: %w", err)
	}
	if err := os.Rename(built, dir); err != nil {
		// Someone else built it meanwhile: use theirs.
		if _, serr := os.Lstat(dir); serr == nil {
			return dir, nil
		}
		return "", fmt.Errorf("building view: %w", err)
	}
	return dir, nil
}

// commitCopy turns the root directory of a copy snapshot into its layer:
// the difference from the parents' view goes into fs, and the root
// directory is kept as the view of id and its parents. It does nothing for
// a snapshot without a root directory (one the overlay snapshotter
// prepared on the same root).
func (s *copySnapshotter) commitCopy(id string) error {
	rootfs := s.rootfs(id)
	if _, err := os.Lstat(rootfs); errors.Is(err, os.ErrNotExist) {
		return nil
	}
	b, err := os.ReadFile(filepath.Join(s.dir(id), parentsFile))
	if err != nil {
		return err
	}
	var parents []string
	if len(b) > 0 {
		parents = strings.Split(string(b), "\n")
	}
	lower := filepath.Join(s.root, emptyDir)
	if len(parents) > 0 {
		if lower, err = s.ensureView(parents); err != nil {
			return err
		}
	}
	// A caller that wrote into fs directly (Apply, downloads) did not use
	// the root directory, which is then not the view of the layer.
	direct, err := dirIsEmpty(s.FS(id))
	if err != nil {
		return err
	}
	direct = !direct
	marker := filepath.Join(s.dir(id), copiedMarker)
	if err := treecopy.Diff(rootfs, lower, s.FS(id), marker, s.userXattr); err != nil {
		return fmt.Errorf("computing the layer: %w", err)
	}
	empty, err := dirIsEmpty(s.FS(id))
	if err != nil {
		return err
	}
	if empty || direct {
		// Either the view is the parents' view, kept already, or the
		// root directory is not the view; it is built when needed.
		err = removeAll(rootfs)
	} else {
		view := s.viewDir(append([]string{id}, parents...))
		if err = os.MkdirAll(filepath.Dir(view), 0o700); err == nil {
			err = os.Rename(rootfs, view)
		}
	}
	if err != nil {
		return err
	}
	_ = os.Remove(filepath.Join(s.dir(id), copiedMarker))
	_ = os.Remove(filepath.Join(s.dir(id), parentsFile))
	return nil
}
