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

// Directories that processes share and a GC may remove while nobody uses
// them (a server's project context directories) are claimed through an
// flock on DIR.use, next to DIR. Releasing a claim writes the directory's
// size and a new token into DIR.use, and its time is the last use: a
// claimer that finds another token than the one it left knows that
// another process changed the directory, or a GC removed it.

// DirUse is a held claim on a shared directory.
type DirUse struct {
	f    *os.File
	path string
	// Token is what the last claimer left.
	Token string
}

// TryUseDir claims dir; ok is false while another claim holds it.
func TryUseDir(dir string) (u *DirUse, ok bool, err error) {
	p := dir + ".use"
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return nil, false, fmt.Errorf("claiming %s: %w", dir, err)
	}
	for {
		f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			return nil, false, fmt.Errorf("claiming %s: %w", dir, err)
		}
		if err := flock(f, unix.LOCK_EX|unix.LOCK_NB); err != nil {
			f.Close()
			if err == unix.EWOULDBLOCK {
				return nil, false, nil
			}
			return nil, false, fmt.Errorf("claiming %s: %w", dir, err)
		}
		if isFile(f, p) {
			b := make([]byte, 128)
			n, _ := f.ReadAt(b, 0)
			_, token, _ := strings.Cut(strings.TrimSpace(string(b[:n])), " ")
			return &DirUse{f: f, path: p, Token: token}, true, nil
		}
		f.Close() // a GC removed it as we locked it: claim the new one
	}
}

// Release records the use, with the directory's size, and ends the
// claim; it returns the token it left.
func (u *DirUse) Release(size int64) (string, error) {
	var rnd [8]byte
	rand.Read(rnd[:])
	token := hex.EncodeToString(rnd[:])
	err := u.f.Truncate(0)
	if err == nil {
		_, err = u.f.WriteAt([]byte(strconv.FormatInt(size, 10)+" "+token+"\n"), 0)
	}
	if cerr := u.f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return "", fmt.Errorf("releasing %s: %w", u.path, err)
	}
	return token, nil
}

// UsedDir is a claimable directory as a GC sees it.
type UsedDir struct {
	Dir      string
	Size     int64
	LastUsed time.Time
}

// UsedDirs lists the directories under parent with their size and last
// use as their claims recorded them (for one never released, 0 and the
// directory's time).
func UsedDirs(parent string) ([]UsedDir, error) {
	ents, err := os.ReadDir(parent)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", parent, err)
	}
	var out []UsedDir
	for _, e := range ents {
		if !e.IsDir() {
			continue
		}
		d := UsedDir{Dir: filepath.Join(parent, e.Name())}
		if fi, err := e.Info(); err == nil {
			d.LastUsed = fi.ModTime()
		}
		if fi, err := os.Stat(d.Dir + ".use"); err == nil {
			d.LastUsed = fi.ModTime()
			b, _ := os.ReadFile(d.Dir + ".use")
			n, _, _ := strings.Cut(string(b), " ")
			d.Size, _ = strconv.ParseInt(n, 10, 64)
		}
		out = append(out, d)
	}
	return out, nil
}

// RemoveUnusedDir removes dir and its claim file unless a claim holds it;
// removed says whether it did.
func RemoveUnusedDir(dir string) (removed bool, err error) {
	u, ok, err := TryUseDir(dir)
	if err != nil || !ok {
		return false, err
	}
	defer u.f.Close()
	// The claim file goes last, still locked: a claimer that opened it
	// meanwhile sees it is gone and claims a new one.
	if err := os.RemoveAll(dir); err != nil {
		return false, fmt.Errorf("removing %s: %w", dir, err)
	}
	return true, os.Remove(u.path)
}
