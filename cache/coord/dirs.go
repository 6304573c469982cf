package coord

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// Scratch directories that a process keeps under a shared parent (the
// servers of one state directory keep their builds' directories under
// serve/builds) are owned the way leases are: <pid>-<random>, with an
// flock on its .owner file for as long as the process lives. Another
// process removes only those whose owner is gone.

// OwnedDir is a directory this process owns until Close.
type OwnedDir struct {
	Path  string
	owner *os.File
}

const ownerFile = ".owner"

// NewOwnedDir makes a directory under parent owned by this process, and
// removes the ones there whose owner is gone.
func NewOwnedDir(parent string) (*OwnedDir, error) {
	if err := os.MkdirAll(parent, 0o700); err != nil {
		return nil, fmt.Errorf("creating %s: %w", parent, err)
	}
	var rnd [6]byte
	rand.Read(rnd[:])
	name := strconv.Itoa(os.Getpid()) + "-" + hex.EncodeToString(rnd[:])
	// Made under a name others skip, and renamed once owned.
	tmp := filepath.Join(parent, ".new-"+name)
	if err := os.Mkdir(tmp, 0o700); err != nil {
		return nil, fmt.Errorf("creating a directory in %s: %w", parent, err)
	}
	f, err := os.OpenFile(filepath.Join(tmp, ownerFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err == nil {
		if err = flock(f, unix.LOCK_EX); err != nil {
			f.Close()
		}
	}
	p := filepath.Join(parent, name)
	if err == nil {
		if err = os.Rename(tmp, p); err != nil {
			f.Close()
		}
	}
	if err != nil {
		os.RemoveAll(tmp)
		return nil, fmt.Errorf("creating a directory in %s: %w", parent, err)
	}
	return &OwnedDir{Path: p, owner: f}, RemoveStaleDirs(parent)
}

// Close removes the directory.
func (d *OwnedDir) Close() error {
	err := os.RemoveAll(d.Path)
	d.owner.Close()
	return err
}

// RemoveStaleDirs removes the directories under parent whose owner is
// gone: those whose .owner nobody locks, and those without one (made by
// a process killed while making it, or by a builder from before owners)
// that are more than a minute old.
func RemoveStaleDirs(parent string) error {
	ents, err := os.ReadDir(parent)
	if err != nil {
		return fmt.Errorf("reading %s: %w", parent, err)
	}
	var errs []error
	for _, e := range ents {
		p := filepath.Join(parent, e.Name())
		if !e.IsDir() || !stale(p) {
			continue
		}
		if err := os.RemoveAll(p); err != nil {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// stale reports whether the owner of the directory p is gone.
func stale(p string) bool {
	fi, err := os.Stat(p)
	if err != nil {
		return false
	}
	// One being made (or left by a process killed while making it, which
	// a minute tells apart).
	old := time.Since(fi.ModTime()) > time.Minute
	if strings.HasPrefix(filepath.Base(p), ".") && !old {
		return false
	}
	f, err := os.Open(filepath.Join(p, ownerFile))
	if errors.Is(err, fs.ErrNotExist) {
		return old
	}
	if err != nil {
		return false
	}
	defer f.Close()
	// A live owner never lets go of the lock, so it need not be kept
	// while the caller removes p.
	return flock(f, unix.LOCK_SH|unix.LOCK_NB) == nil
}
